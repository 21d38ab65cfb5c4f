"""Temperature scaling and abstention, fitted on validation and applied at predict.

`fit(logits, labels)` picks the temperature that minimises validation log
loss (Guo et al. 2017) and keeps the validation set's calibrated confidences
and correctness, so `threshold(target)` can later find the confidence above
which validation accuracy reaches any target. Dividing logits by a positive
temperature never changes a label, only how sure the model says it is.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from sentiment_jax import metrics

# Search range for log(temperature): temperatures from 1/20 to 20.
_LOG_T_BOUNDS = (-math.log(20), math.log(20))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
  """The temperature T > 0 minimising the log loss of `logits / T`."""
  # Imported here: predict applies a fitted temperature and never fits one.
  from scipy import optimize  # pylint: disable=g-import-not-at-top
  logits = np.asarray(logits, np.float64)
  result = optimize.minimize_scalar(
      lambda log_t: metrics.log_loss(logits / math.exp(log_t), labels),
      bounds=_LOG_T_BOUNDS, method='bounded', options={'xatol': 1e-6})
  return float(math.exp(result.x))


def accuracy_threshold(confidence: np.ndarray, correct: np.ndarray,
                       target: float) -> float:
  """The lowest confidence threshold whose accepted set reaches `target`.

  Accepting every example with confidence >= threshold, the threshold is the
  one that accepts the most examples at accuracy >= target. Cuts fall only
  between distinct confidences, so ties are accepted or refused together.
  Returns 0.0 when every example may be accepted and `inf` when no cut
  reaches the target.
  """
  order = np.argsort(-np.asarray(confidence), kind='stable')
  conf, hits = np.asarray(confidence)[order], np.asarray(correct)[order]
  accuracy = np.cumsum(hits) / np.arange(1, len(hits) + 1)
  # Index k may end the accepted set only where the next confidence is lower.
  boundary = np.append(conf[1:] < conf[:-1], True)
  good = np.flatnonzero(boundary & (accuracy >= target))
  if not len(good):
    return math.inf
  last = good[-1]
  return 0.0 if last == len(conf) - 1 else float(conf[last])


@dataclasses.dataclass
class Calibration:
  """A fitted temperature and the validation evidence for abstention."""

  temperature: float
  fitted_on: str  # The split it was fitted on: always validation.
  confidence: np.ndarray  # `[n]` calibrated top-label confidence on it.
  correct: np.ndarray  # `[n]` bool, whether the label was right.
  _thresholds: dict[float, float] = dataclasses.field(
      default_factory=dict, repr=False, compare=False)

  def apply(self, logits: np.ndarray) -> np.ndarray:
    """Calibrated logits `[n, 2]`."""
    return np.asarray(logits, np.float64) / self.temperature

  def threshold(self, target_accuracy: float) -> float:
    # Cached: a server asks for the same few targets on every request.
    if target_accuracy not in self._thresholds:
      self._thresholds[target_accuracy] = accuracy_threshold(
          self.confidence, self.correct, target_accuracy)
    return self._thresholds[target_accuracy]

  def abstain(self, logits: np.ndarray, target_accuracy: float) -> np.ndarray:
    """`[n]` bool: calibrated confidence below the target's threshold."""
    confidence = metrics.confidence(self.apply(logits))
    return confidence < self.threshold(target_accuracy)

  def to_json(self) -> dict[str, Any]:
    return {'temperature': self.temperature, 'fitted_on': self.fitted_on,
            'confidence': np.round(self.confidence, 7).tolist(),
            'correct': self.correct.astype(int).tolist()}

  @classmethod
  def from_json(cls, data: dict[str, Any]) -> 'Calibration':
    return cls(float(data['temperature']), str(data['fitted_on']),
               np.asarray(data['confidence'], np.float64),
               np.asarray(data['correct'], bool))


def fit(logits: np.ndarray, labels: np.ndarray, split: str = 'validation'
        ) -> Calibration:
  """Fits the temperature on `split`'s logits `[n, 2]` and labels `[n]`."""
  temperature = fit_temperature(logits, labels)
  scaled = np.asarray(logits, np.float64) / temperature
  return Calibration(temperature, split, metrics.confidence(scaled),
                     metrics.decide(scaled) == np.asarray(labels))
