"""Loading runs to fit: a sweep's results.jsonl, or the Chinchilla Figure 4 points.

A run is N (non-embedding parameters), D (training tokens), C (training
FLOPs from `sentiment_jax.models.forward_flops`, the project's one formula)
and L (best validation loss, the mean cross-entropy of `sentiment_jax.metrics`).
"""

from __future__ import annotations

import csv
import dataclasses
import math

import numpy as np

from sentiment_jax import jsonl
from scaling.laws import ScalingFitError

# results.jsonl fields the fit reads; the report shows a few more if present.
N_FIELD, D_FIELD, C_FIELD, LOSS_FIELD = ('n_params', 'tokens', 'flops',
                                         'best_val_loss')
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

  def log_x(self, *names: str) -> np.ndarray:
    """log of the named columns ("n_params", "tokens"), [runs, len(names)]."""
    return np.log(np.stack([getattr(self, name) for name in names], axis=1))


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


def load_results(path: str) -> Runs:
  """Reads results.jsonl: one run per line, each with N, D, C and L fields."""
  records = []
  for line_number, record in jsonl.read(path, ScalingFitError):
    for field in (N_FIELD, D_FIELD, C_FIELD, LOSS_FIELD):
      if field not in record:
        raise ScalingFitError(f'{path}:{line_number}: missing field {field!r}')
      positive(record[field], f'{path}:{line_number}', field)
    records.append(record)
  if not records:
    raise ScalingFitError(f'{path}: no runs')
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
