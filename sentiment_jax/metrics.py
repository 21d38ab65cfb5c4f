"""The one definition of the classifier's metrics, computed from logits `[n, 2]`.

* Decision rule: positive iff `P(positive) >= THRESHOLD`, evaluated on the
  logit margin `logit_pos - logit_neg >= log(THRESHOLD / (1 - THRESHOLD))`, so
  a tie (margin exactly 0 at THRESHOLD 0.5) is positive everywhere, and the
  float rounding of a probability near 0.5 cannot flip a label. `decide` works
  on NumPy and JAX arrays alike, so the jitted train step uses it too.
* Log loss: the mean cross-entropy `logsumexp(logits) - logits[label]`,
  computed from logits in float64. It is exact, so it needs no clipping, and it
  is the quantity training minimises: training, eval and the scaling fit all
  read this one number.
* Everything else (precision, recall, F1, AUC, confusion matrix) is
  scikit-learn on these labels and `P(positive)`.
* Calibration: top-label confidence (the probability of the predicted label),
  expected calibration error over equal-width or equal-mass bins (Guo et al.
  2017), and the binary Brier score.
* Paired comparison: McNemar's exact test of two classifiers on the same
  examples, which counts only the examples where exactly one is right.
* Counterfactual pairs: accuracy on originals, on their revisions, and on
  whole pairs (both halves right).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

THRESHOLD = 0.5  # P(positive) at and above which a text is called positive.
LOGIT_THRESHOLD = math.log(THRESHOLD / (1 - THRESHOLD))
LABEL_NAMES = ('negative', 'positive')
LENGTH_EDGES = (0, 128, 256, 512, 1024, math.inf)  # Tokens before truncation.


def margin(logits: Any) -> Any:
  """`logit_pos - logit_neg`, `[n]`, for logits `[n, 2]` (NumPy or JAX)."""
  return logits[..., 1] - logits[..., 0]


def decide(logits: Any) -> Any:
  """Predicted labels `[n]` (1 = positive) under the decision rule."""
  return (margin(logits) >= LOGIT_THRESHOLD).astype('int32')


def p_positive(logits: np.ndarray) -> np.ndarray:
  """P(positive) `[n]`, float64: the softmax of `[n, 2]` logits.

  The logistic of the margin as `exp(-log(1 + exp(-margin)))`, which never
  overflows; it equals scipy's `expit` to within 4e-16, and NumPy alone keeps
  scipy (0.13-0.18 s to import) off the predict path.
  """
  return np.exp(-np.logaddexp(0.0, -margin(np.asarray(logits, np.float64))))


def log_loss(logits: np.ndarray, labels: np.ndarray) -> float:
  """Mean cross-entropy of `[n, 2]` logits against `[n]` 0/1 labels."""
  logits = np.asarray(logits, np.float64)
  picked = np.take_along_axis(logits, np.asarray(labels)[:, None], 1)[:, 0]
  return float(np.mean(np.logaddexp.reduce(logits, axis=1) - picked))


def classification_metrics(*, logits: np.ndarray, labels: np.ndarray
                           ) -> dict[str, Any]:
  """Accuracy, precision, recall, F1, AUC, log loss and confusion matrix."""
  # Imported here, as in `mcnemar`: prediction loads this module but needs
  # neither scikit-learn (0.3-0.5 s, with pandas) nor scipy.stats.
  from sklearn import metrics as skm  # pylint: disable=g-import-not-at-top
  labels = np.asarray(labels)
  prob, pred = p_positive(logits), decide(np.asarray(logits))
  return {
      'num_examples': int(len(labels)),
      'accuracy': float(skm.accuracy_score(labels, pred)),
      'precision': float(skm.precision_score(labels, pred, zero_division=0)),
      'recall': float(skm.recall_score(labels, pred, zero_division=0)),
      'f1': float(skm.f1_score(labels, pred, zero_division=0)),
      'auc_roc': (float(skm.roc_auc_score(labels, prob))
                  if len(set(labels.tolist())) == 2 else float('nan')),
      'log_loss': log_loss(logits, labels),
      'confusion_matrix': skm.confusion_matrix(labels, pred,
                                               labels=[0, 1]).tolist(),
  }


def accuracy_by_length(logits: np.ndarray, labels: np.ndarray,
                       lengths: np.ndarray) -> list[dict]:
  """Accuracy per bucket of untruncated token length (empty buckets omitted)."""
  correct = decide(np.asarray(logits)) == labels
  rows = []
  for low, high in zip(LENGTH_EDGES[:-1], LENGTH_EDGES[1:]):
    inside = (lengths >= low) & (lengths < high)
    if inside.any():
      rows.append({'tokens': f'{low}-{high if math.isfinite(high) else ""}',
                   'num_examples': int(inside.sum()),
                   'accuracy': float(correct[inside].mean())})
  return rows


def confident_examples(logits: np.ndarray, labels: np.ndarray, count: int,
                       mistakes_share: float = 0.5) -> list[tuple[int, str]]:
  """(index, group) of the most confident mistakes and correct predictions.

  Confidence is the size of the logit margin. `mistakes_share` of `count`
  (rounded down) are mistakes ('confident_mistake'), the rest correct
  ('confident_correct'); when either kind runs short, the other fills in.
  Each group is ordered by confidence, highest first; correct ones come first.
  """
  logits = np.asarray(logits)
  order = np.argsort(-np.abs(margin(logits) - LOGIT_THRESHOLD), kind='stable')
  right_mask = decide(logits[order]) == np.asarray(labels)[order]
  wrong, right = order[~right_mask], order[right_mask]
  wrong = wrong[:max(int(count * mistakes_share), count - len(right))]
  right = right[:count - len(wrong)]
  return ([(int(i), 'confident_correct') for i in right]
          + [(int(i), 'confident_mistake') for i in wrong])


def confidence(logits: np.ndarray) -> np.ndarray:
  """Top-label confidence `[n]`: the probability of the label `decide` picks."""
  prob = p_positive(logits)
  return np.where(decide(np.asarray(logits)) == 1, prob, 1 - prob)


def reliability_bins(confidence_: np.ndarray, correct: np.ndarray,
                     num_bins: int = 15, adaptive: bool = False
                     ) -> list[dict[str, float]]:
  """Per non-empty bin: edges, count, mean confidence and accuracy.

  Equal-width bins split [0, 1] into `num_bins` (a confidence on an edge goes
  to the bin above, 1.0 to the last); `adaptive` bins hold equal counts of the
  sorted confidences instead.
  """
  confidence_ = np.asarray(confidence_, np.float64)
  correct = np.asarray(correct, np.float64)
  if adaptive:
    order = np.argsort(confidence_, kind='stable')
    groups = [g for g in np.array_split(order, num_bins) if len(g)]
  else:
    which = np.minimum((confidence_ * num_bins).astype(int), num_bins - 1)
    groups = [np.flatnonzero(which == b) for b in range(num_bins)]
  return [{'low': float(confidence_[g].min()) if adaptive else b / num_bins,
           'high': (float(confidence_[g].max()) if adaptive
                    else (b + 1) / num_bins),
           'count': int(len(g)), 'confidence': float(confidence_[g].mean()),
           'accuracy': float(correct[g].mean())}
          for b, g in enumerate(groups) if len(g)]


def ece(confidence_: np.ndarray, correct: np.ndarray, num_bins: int = 15,
        adaptive: bool = False) -> float:
  """Expected calibration error: the count-weighted |accuracy - confidence|."""
  bins = reliability_bins(confidence_, correct, num_bins, adaptive)
  total = sum(b['count'] for b in bins)
  return float(sum(b['count'] * abs(b['accuracy'] - b['confidence'])
                   for b in bins) / total)


def brier(logits: np.ndarray, labels: np.ndarray) -> float:
  """Binary Brier score: the mean of (P(positive) - label)^2."""
  return float(np.mean((p_positive(logits) - np.asarray(labels)) ** 2))


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, Any]:
  """McNemar's exact test of `[n]` bool correctness of A and B on the same
  examples: the two-sided binomial p-value of the discordant pairs."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  a_only = int((correct_a & ~correct_b).sum())
  b_only = int((~correct_a & correct_b).sum())
  discordant = a_only + b_only
  p_value = (stats.binomtest(a_only, discordant, 0.5).pvalue if discordant
             else 1.0)
  return {'a_only_correct': a_only, 'b_only_correct': b_only,
          'p_value': float(p_value)}


def pair_accuracy(correct_originals: np.ndarray, correct_revisions: np.ndarray
                  ) -> dict[str, float | int | None]:
  """Accuracy on the originals, on the revisions, and on whole pairs (both
  halves right), from `[n]` bool correctness of each half; None for no pairs."""
  correct_originals = np.asarray(correct_originals, bool)
  correct_revisions = np.asarray(correct_revisions, bool)
  rate = lambda x: float(x.mean()) if len(x) else None
  return {'num_pairs': int(len(correct_originals)),
          'original_accuracy': rate(correct_originals),
          'revised_accuracy': rate(correct_revisions),
          'pair_accuracy': rate(correct_originals & correct_revisions)}
