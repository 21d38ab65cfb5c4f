"""Study 5, selective prediction: risk-coverage, AURC, and abstention thresholds.

Confidence is the calibrated top-label probability. AURC is the mean error
rate of the k most confident predictions over k = 1..n; E-AURC subtracts the
AURC of a perfect ranking with the same errors. The threshold for a target
accuracy is chosen on validation (`sentiment_jax.calibration`, the rule that
`--mode=predict`'s `abstain` uses) and then checked on test and Rotten
Tomatoes: the coverage it keeps and the accuracy it really reaches there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis import context as context_lib, stats
from sentiment_jax import metrics

TARGETS = (0.95, 0.99)
CURVE_POINTS = 100  # Risk-coverage points kept for the figure.


def split_report(scorer: context_lib.Scorer, split: str, labels: np.ndarray
                 ) -> dict[str, Any]:
  logits = scorer.calibration.apply(scorer.split_logits(split))
  confidence = metrics.confidence(logits)
  correct = metrics.decide(logits) == labels
  coverage, risk = stats.risk_coverage(confidence, correct)
  keep = np.unique(np.linspace(0, len(risk) - 1, CURVE_POINTS).astype(int))
  value = stats.aurc(confidence, correct)
  out: dict[str, Any] = {
      'num_examples': int(len(labels)), 'accuracy': float(correct.mean()),
      'aurc': value, 'e_aurc': value - stats.optimal_aurc(correct),
      'curve': {'coverage': coverage[keep].tolist(),
                'risk': risk[keep].tolist()}}
  for target in TARGETS:
    threshold = scorer.calibration.threshold(target)
    accepted = confidence >= threshold
    out[f'threshold_{target}'] = threshold
    out[f'coverage_at_accuracy_{target}'] = float(accepted.mean())
    out[f'accuracy_at_threshold_{target}'] = (
        float(correct[accepted].mean()) if accepted.any() else None)
  return out


def run(ctx: context_lib.Context, scorer: context_lib.Scorer, progress
        ) -> dict[str, Any]:
  out = {}
  for split in ('validation', 'test') + ((context_lib.RT,) if ctx.has_rt
                                         else ()):
    out[split] = split_report(scorer, split, ctx.splits[split].labels)
    progress.update()
  return out


def steps(ctx: context_lib.Context) -> int:
  return 3 if ctx.has_rt else 2
