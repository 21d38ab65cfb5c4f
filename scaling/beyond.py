"""Predictions beyond the sweep: real runs' validation loss from the fitted
law, epoch by epoch, and the compute-optimal N and D a target loss needs.

Real configs train for several epochs of the same reviews, which the
one-epoch sweep never does. Following Muennighoff et al. (2023), R repeats of
U unique tokens are worth D' = U + U R* (1 - exp(-R / R*)) fresh ones; we use
their fitted R*_D = 15.4 and show the naive D = U (R + 1) beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scaling import fitting, laws
from scaling.laws import ScalingFitError
from sentiment_jax import jsonl

R_STAR = 15.4  # Muennighoff et al. (2023), eq. 5: R*_D fitted on their runs.


def effective_tokens(unique: float, epochs: float) -> float:
  """Fresh-token worth of `epochs` passes over `unique` tokens."""
  if epochs <= 1.0:  # Within the first pass every token is fresh.
    return unique * epochs
  repeats = epochs - 1.0
  return unique + unique * R_STAR * (1.0 - np.exp(-repeats / R_STAR))


def real_run(workdir: str | Path) -> dict:
  """N, unique tokens per epoch, and validation loss after each epoch."""
  workdir = Path(workdir)
  try:
    summary = json.loads((workdir / 'summary.json').read_text())
    config = json.loads((workdir / 'config.json').read_text())
  except (OSError, json.JSONDecodeError) as e:
    raise ScalingFitError(f'{workdir}: not a finished training run ({e}); '
                          'train it first') from None
  per_epoch = summary['steps_per_epoch']
  epochs_run = summary['step'] / per_epoch
  evals = [r for _, r in jsonl.read(workdir / 'metrics.jsonl',
                                    ScalingFitError) if 'val/loss' in r]
  return {'name': workdir.name, 'n': summary['num_params_non_embedding'],
          'unique_tokens': summary['train_tokens'] / epochs_run,
          'dropout': config['model']['dropout_rate'],
          # Outside N (count_params leaves embedding tables out), and absent
          # from every sweep point: what the law cannot see.
          'ngram_buckets': config['model'].get('ngram_buckets', 0),
          'learning_rate': config['train']['learning_rate'],
          'evals': [(r['step'] / per_epoch, r['val/loss']) for r in evals]}


def predict_runs(theta: np.ndarray, workdirs: list[str],
                 form: str = 'additive') -> list[dict]:
  """Each real run's loss after each epoch: actual, and the law's (theta of
  `form`) at the naive and the repetition-discounted D."""
  out = []
  for workdir in workdirs:
    run = real_run(workdir)
    rows = []
    for epochs, actual in run['evals']:
      naive = run['unique_tokens'] * epochs
      effective = effective_tokens(run['unique_tokens'], epochs)
      naive_loss, effective_loss = laws.predict(
          theta, np.log([[run['n'], naive], [run['n'], effective]]), form)
      rows.append({'epochs': epochs, 'tokens': naive,
                   'effective_tokens': effective, 'actual': actual,
                   'predicted_naive': float(naive_loss),
                   'predicted': float(effective_loss),
                   'rel_error': float((effective_loss - actual) / actual)})
    out.append({**{k: v for k, v in run.items() if k != 'evals'},
                'rows': rows})
  return out


def compute_for_loss(theta: np.ndarray, target: float, k: float, p: float,
                     form: str = 'additive') -> dict | None:
  """The compute-optimal C, N and D at which the law reaches `target`;
  None if it never does (target at or below E, or an exponent <= 0)."""
  if target <= np.exp(theta[0]) or theta[3] <= 0 or theta[4] <= 0:
    return None
  budgets = np.logspace(8, 30, 881)  # 40 per decade.
  optimal = fitting.compute_optimal(theta, budgets, k, p, form)
  loss = laws.predict(theta, np.log(np.stack(
      [optimal['n_opt'], optimal['d_opt']], axis=1)), form)
  reached = np.nonzero(loss <= target)[0]
  if not len(reached):
    return None
  i = reached[0]
  return {'target': target, 'unreachable': False,
          'compute': float(budgets[i]), 'n': float(optimal['n_opt'][i]),
          'd': float(optimal['d_opt'][i])}


def target_losses(values: list[float], theta: np.ndarray, k: float, p: float,
                  form: str = 'additive') -> list[dict]:
  """`compute_for_loss` for each target, unreachable ones marked."""
  out = []
  for target in values:
    if target <= 0:
      raise ScalingFitError(f'target loss {target} must be positive')
    found = compute_for_loss(theta, target, k, p, form)
    out.append(found or {'target': target, 'unreachable': True,
                         'floor': float(np.exp(theta[0]))})
  return out
