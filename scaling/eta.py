"""How long a sweep has left: each run's cost from its config, and a fit of
the times of the runs so far."""

from __future__ import annotations

import ml_collections
import numpy as np
import scipy.optimize

from scaling import points
from sentiment_jax import models

# ((steps, FLOPs) from `relative_cost`, wall seconds) of each timed run, by
# point name: what the ETA is fitted on.
Timed = dict[str, tuple[tuple[float, float], float]]


def relative_cost(config: ml_collections.ConfigDict, point: dict
                  ) -> tuple[float, float]:
  """(steps, training FLOPs) of a point, each up to a constant, from the
  config alone (for the ETA).

  Steps scale as fraction x epochs / batch. data.max_len stands in for the
  mean sequence length, unknown before training.
  """
  config = points.point_config(config, point)
  d = config.data
  passes = d.train_fraction * config.train.num_epochs
  flops = models.forward_flops(
      models.TransformerConfig.from_run_config(
          config, 1, models.TransformerConfig.NO_NEGATION_IDS),
      d.max_len)
  return passes / d.batch_size, passes * flops


def eta_seconds(done: list[tuple[tuple[float, float], float]],
                remaining: list[tuple[float, float]]) -> float | None:
  """Time left, from ((steps, FLOPs), seconds) of the runs so far; None
  before three runs.

  Fits seconds = overhead + a·steps + b·FLOPs with non-negative terms:
  compiling, validating and checkpointing take 4-15 s per run however small
  (on 2 cores), a step of a narrow model costs its host overhead more than
  its FLOPs, and a wide one the reverse, so time is proportional to neither.
  """
  if len(done) < 3:
    return None
  features = np.array([[1.0, *cost] for cost, _ in done])
  scale = features.max(axis=0)  # Columns differ by ~12 orders of magnitude.
  coefficients, _ = scipy.optimize.nnls(features / scale,
                                        np.array([s for _, s in done]))
  ahead = np.array([[1.0, *cost] for cost in remaining]).reshape(-1, 3)
  return float(((ahead / scale) @ coefficients).sum())


def duration(seconds: float) -> str:
  """`1h05m` or `4m02s`."""
  minutes, seconds = divmod(round(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f'{hours}h{minutes:02d}m' if hours else f'{minutes}m{seconds:02d}s'
