"""The statistics the studies share: intervals, detection and risk-coverage.

* `wilson`: the Wilson score interval of a failure rate.
* `bootstrap`: a percentile interval of any statistic of resampled examples.
* `detection`: AUROC, FPR at 95% TPR and AUPR of an out-of-distribution
  score. Vectorised over one sort, so a bootstrap of it stays cheap; the tests
  check it against scikit-learn.
* `risk_coverage`, `aurc`: selective prediction (Geifman & El-Yaniv 2017).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

Z_95 = 1.959963984540054  # The standard normal's 97.5% quantile.


def wilson(count: int, n: int) -> tuple[float, float]:
  """Wilson score 95% interval of the rate `count / n`."""
  if n == 0:
    return (math.nan, math.nan)
  p, z2 = count / n, Z_95**2
  centre = (p + z2 / (2 * n)) / (1 + z2 / n)
  half = Z_95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
  return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap(statistic: Callable[..., Any], groups: Sequence[Sequence],
              samples: int, seed: int = 0) -> Any:
  """95% percentile interval of `statistic(*groups)` over resampled examples.

  Each group (e.g. in-distribution and OOD scores) is a tuple of aligned
  arrays, resampled with replacement within itself, so groups keep their
  size. A statistic returning a dict of floats gets a dict of intervals.
  """
  rng = np.random.default_rng(seed)
  values = []
  for _ in range(samples):
    drawn = []
    for arrays in groups:
      index = rng.integers(0, len(arrays[0]), len(arrays[0]))
      drawn.extend(np.asarray(a)[index] for a in arrays)
    values.append(statistic(*drawn))
  if isinstance(values[0], dict):
    return {key: _interval([v[key] for v in values]) for key in values[0]}
  return _interval(values)


def _interval(values: Sequence[float]) -> tuple[float, float]:
  low, high = np.nanpercentile(np.asarray(values, np.float64), [2.5, 97.5])
  return (float(low), float(high))


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
  """P(score of an outside example > score of an inside one), ties half."""
  ranks = scipy_stats.rankdata(np.concatenate([inside, outside]))
  n_in, n_out = len(inside), len(outside)
  return float((ranks[n_in:].sum() - n_out * (n_out + 1) / 2) / (n_in * n_out))


def fpr_at_95_tpr(inside: np.ndarray, outside: np.ndarray) -> float:
  """Share of outside examples accepted when 95% of inside ones are accepted.

  Higher scores mean 'more out-of-distribution'; the threshold is the
  lowest that accepts at least 95% of the inside scores (Hendrycks & Gimpel
  2017).
  """
  threshold = np.sort(inside)[math.ceil(0.95 * len(inside)) - 1]
  return float(np.mean(outside <= threshold))


def aupr(inside: np.ndarray, outside: np.ndarray) -> float:
  """Average precision with the outside (OOD) examples as positives."""
  scores = np.concatenate([inside, outside])
  positive = np.concatenate([np.zeros(len(inside)), np.ones(len(outside))])
  order = np.argsort(-scores, kind='stable')
  hits = positive[order]
  precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
  # Average precision over positives, as scikit-learn (ties broken by order).
  return float((precision * hits).sum() / hits.sum())


def detection(inside: np.ndarray, outside: np.ndarray) -> dict[str, float]:
  return {'auroc': auroc(inside, outside),
          'fpr95': fpr_at_95_tpr(inside, outside),
          'aupr': aupr(inside, outside)}


def risk_coverage(confidence: np.ndarray, correct: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
  """Coverage `k/n` and risk (error rate of the k most confident), k = 1..n."""
  order = np.argsort(-np.asarray(confidence), kind='stable')
  errors = 1 - np.asarray(correct, np.float64)[order]
  k = np.arange(1, len(errors) + 1)
  return k / len(errors), np.cumsum(errors) / k


def aurc(confidence: np.ndarray, correct: np.ndarray) -> float:
  """Area under the risk-coverage curve: the mean risk over k = 1..n."""
  return float(risk_coverage(confidence, correct)[1].mean())


def optimal_aurc(correct: np.ndarray) -> float:
  """AURC of a ranking that puts every correct prediction first."""
  correct = np.asarray(correct, bool)
  return aurc(correct.astype(np.float64), correct)
