"""Study 1, calibration: ECE, NLL and Brier before and after temperature scaling.

The temperature is fitted on validation only (when the scorer is built) and
then applied unchanged to test and to Rotten Tomatoes, so the shifted split
shows whether an in-domain temperature transfers. ECE is top-label, over 15
and 10 equal-width bins and 15 equal-mass bins, each with a bootstrap 95%
interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis import context as context_lib, stats
from sentiment_jax import metrics

# name -> (bins, equal-mass?)
ECES = {'ece_15': (15, False), 'ece_10': (10, False),
        'adaptive_ece_15': (15, True)}


def _measures(logits: np.ndarray, labels: np.ndarray, samples: int,
              seed: int) -> dict[str, Any]:
  confidence = metrics.confidence(logits)
  correct = metrics.decide(logits) == labels
  out: dict[str, Any] = {}
  for name, (bins, adaptive) in ECES.items():
    out[name] = metrics.ece(confidence, correct, bins, adaptive)
    out[name + '_ci95'] = stats.bootstrap(
        lambda c, k, b=bins, a=adaptive: metrics.ece(c, k, b, a),
        [(confidence, correct)], samples, seed)
  out['nll'] = metrics.log_loss(logits, labels)
  out['brier'] = metrics.brier(logits, labels)
  out['reliability'] = metrics.reliability_bins(confidence, correct, 15)
  return out


def split_report(scorer: context_lib.Scorer, split: str, labels: np.ndarray,
                 options: context_lib.Options) -> dict[str, Any]:
  """Accuracy, and every measure before and after, as `<measure>_before` etc."""
  raw = scorer.split_logits(split)
  out: dict[str, Any] = {
      'num_examples': int(len(labels)),
      'accuracy': float(np.mean(metrics.decide(raw) == labels))}
  for when, logits in (('before', raw),
                       ('after', scorer.calibration.apply(raw))):
    for name, value in _measures(logits, labels, options.bootstrap_samples,
                                 options.seed).items():
      # ece_15_ci95 -> ece_15_before_ci95; nll -> nll_before.
      out[name.replace('_ci95', f'_{when}_ci95') if name.endswith('_ci95')
          else f'{name}_{when}'] = value
  out['temperature_helps'] = out['ece_15_after'] < out['ece_15_before']
  return out


def run(ctx: context_lib.Context, scorer: context_lib.Scorer, progress
        ) -> dict[str, Any]:
  out: dict[str, Any] = {'temperature': scorer.calibration.temperature,
                         'fitted_on': scorer.calibration.fitted_on}
  for split in ('validation', 'test') + ((context_lib.RT,) if ctx.has_rt
                                         else ()):
    out[split] = split_report(scorer, split, ctx.splits[split].labels,
                              ctx.options)
    progress.update()
  return out


def steps(ctx: context_lib.Context) -> int:
  """Progress-bar units per scorer."""
  return 3 if ctx.has_rt else 2
