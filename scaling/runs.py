"""Loading runs to fit: a sweep's results.jsonl, or the Chinchilla Figure 4 points.

A run is N (non-embedding parameters), D (training tokens), C (training
FLOPs from `sentiment_jax.models.forward_flops`, the project's one formula)
and L (best validation loss, the mean cross-entropy of `sentiment_jax.metrics`).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import numpy as np

from sentiment_jax import jsonl
from scaling.laws import ScalingFitError

# results.jsonl fields the fit reads; the report shows a few more if present.
N_FIELD, D_FIELD, C_FIELD, LOSS_FIELD = ('n_params', 'tokens', 'flops',
                                         'best_val_loss')
SEED = 'train.seed'  # The override that makes a replicate of a point.
# Besiroglu et al. (2024) drop the 5 highest losses, leaving 240 points.
CHINCHILLA_DROPPED = 5


@dataclasses.dataclass(frozen=True)
class Runs:
  """Training runs: N, D, C and L, each [runs]."""

  source: str
  n_params: np.ndarray  # Non-embedding parameters N.
  tokens: np.ndarray  # Training tokens D.
  flops: np.ndarray  # Training FLOPs C.
  loss: np.ndarray  # Best validation loss L.
  records: list[dict]  # The rows as read, for the report's table.

  def subset(self, mask: np.ndarray) -> 'Runs':
    return Runs(self.source, self.n_params[mask], self.tokens[mask],
                self.flops[mask], self.loss[mask],
                [r for r, keep in zip(self.records, mask) if keep])

  def num_trained(self) -> int:
    """Training runs behind these runs, each seed of a point counted."""
    return sum(len(r.get('replicate_losses', [None])) for r in self.records)

  def log_x(self, *names: str) -> np.ndarray:
    """log of the named columns ("n_params", "tokens"), [runs, len(names)]."""
    return np.log(np.stack([getattr(self, name) for name in names], axis=1))


def decades(values: np.ndarray) -> float:
  """How many powers of ten values [runs] span, largest over smallest."""
  return float(np.log10(values.max() / values.min()))


def positive(value, where: str, field: str) -> float:
  """value as a float, or an error naming where it came from."""
  if isinstance(value, str):
    try:
      value = float(value)
    except ValueError:
      pass
  if (isinstance(value, bool) or not isinstance(value, (int, float))
      or not math.isfinite(value) or value <= 0):
    raise ScalingFitError(
        f'{where}: field {field!r} must be a positive number, got {value!r}')
  return float(value)


def _point(record: dict, line_number: int) -> str:
  """What makes runs replicates: the same overrides but for the seed. A
  record without overrides (a sweep's point always has some) is its own
  point, named by its line."""
  overrides = record.get('overrides')
  if not isinstance(overrides, dict) or not overrides:
    return f'line {line_number}'
  return json.dumps({k: v for k, v in overrides.items() if k != SEED},
                    sort_keys=True)


def _average(replicates: list[dict]) -> dict:
  """One record for a point's runs at several seeds: the first, with N, D, C,
  L (and accuracy) the mean, wall time the sum, and every seed's loss kept in
  `replicate_losses`."""
  if len(replicates) == 1:
    return replicates[0]
  values = lambda field: [float(r[field]) for r in replicates if field in r]
  averaged = {field: float(np.mean(values(field)))
              for field in (N_FIELD, D_FIELD, C_FIELD, LOSS_FIELD,
                            'best_val_accuracy') if values(field)}
  if values('wall_time_s'):
    averaged['wall_time_s'] = float(np.sum(values('wall_time_s')))
  return {**replicates[0], **averaged,
          'replicate_losses': values(LOSS_FIELD)}


def load_results(path: str, min_steps: int = 0) -> Runs:
  """Reads results.jsonl: one run per line, each with N, D, C and L fields.

  Runs of one point at different seeds (`train.seed` in their overrides)
  become one run with their mean: the fit and the hold-out check then see
  less of one run's noise. Runs of fewer than `min_steps` optimizer steps
  (the `steps` field) are left out.
  """
  points: dict[str, list[dict]] = {}
  fields = (N_FIELD, D_FIELD, C_FIELD, LOSS_FIELD) + (
      ('steps',) if min_steps else ())
  for line_number, record in jsonl.read(path, ScalingFitError):
    for field in fields:
      if field not in record:
        raise ScalingFitError(f'{path}:{line_number}: missing field {field!r}')
      positive(record[field], f'{path}:{line_number}', field)
    if min_steps and record['steps'] < min_steps:
      continue
    points.setdefault(_point(record, line_number), []).append(record)
  if not points:
    raise ScalingFitError(f'{path}: no runs' + (
        f' of {min_steps} steps or more' if min_steps else ''))
  records = [_average(replicates) for replicates in points.values()]
  column = lambda field: np.array([float(r[field]) for r in records])
  return Runs(path, column(N_FIELD), column(D_FIELD), column(C_FIELD),
              column(LOSS_FIELD), records)


def load_chinchilla(path: str) -> Runs:
  """Reads the Chinchilla CSV (Model Size, Training FLOP, loss); D = C/(6N)."""
  with open(path, newline='') as f:
    rows = list(csv.DictReader(f))
  columns = {'n': 'Model Size', 'flops': 'Training FLOP', 'loss': 'loss'}
  missing = [c for c in columns.values() if not rows or c not in rows[0]]
  if missing:
    raise ScalingFitError(f'{path}: missing column(s) {missing}')
  values = {key: np.array([positive(row[name], f'{path}:{i + 2}', name)
                           for i, row in enumerate(rows)])
            for key, name in columns.items()}
  keep = np.argsort(values['loss'])[:len(rows) - CHINCHILLA_DROPPED]
  n, flops, loss = (values[key][keep] for key in ('n', 'flops', 'loss'))
  return Runs(path, n, flops / (6.0 * n), flops, loss, [{} for _ in keep])
