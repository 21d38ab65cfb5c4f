"""Fitting a law: the Chinchilla grid of starts, the bootstrap, and the compute-optimal allocation.

The fit needs float64 (the objective near the optimum is ~1e-6 and its
gradient ~1e-11) while the rest of the project trains in float32, so the
public functions turn x64 on only while they run.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import itertools
import time

import jax
import numpy as np
from scipy.special import expit

from scaling.laws import FORMS, ScalingFitError, minimise, padded

# The Chinchilla grid of starts: 5 values of e, 6 of each a_k and 5 of each
# alpha_k, i.e. 4,500 starts for the joint law and 150 for a single variable.
E_GRID = np.linspace(-1.0, 1.0, 5)
A_GRID = np.linspace(0.0, 25.0, 6)
ALPHA_GRID = np.linspace(0.0, 2.0, 5)

# Screening: every grid start runs this many iterations with a short linesearch.
SCREEN_ITERATIONS = 20
SCREEN_LINESEARCH_STEPS = 3
SCREEN_CHUNK_SIZE = 512
# Refinement: the best screened starts run to convergence.
REFINE_TOP = 64
REFINE_CHUNK_SIZE = 16
MAX_ITERATIONS = 1000
LINESEARCH_STEPS = 20  # optax.lbfgs's default.
# Bootstrap starts: up to BOOTSTRAP_STARTS distinct local optima of the
# full-data fit (some parameter differs by more than DISTINCT_THETA) whose
# objective is within NEAR_OPTIMAL of the best. Resampling moves the mean
# objective by ~1/sqrt(points) of itself, so a basin 50% worse on all the data
# will not win a resample of more than a handful of points; seeding from such
# basins made the Chinchilla bootstrap 10x slower for identical intervals.
BOOTSTRAP_STARTS = 4
DISTINCT_THETA = 0.1
NEAR_OPTIMAL = 1.5


@dataclasses.dataclass(frozen=True)
class Fit:
  """The best of a grid of L-BFGS runs.

  `theta` is [1 + 2k] for k variables: (e, a_1..a_k, alpha_1..alpha_k) of
  the law `form` (`laws.FORMS`).
  """

  form: str
  theta: np.ndarray
  objective: float  # Mean Huber loss of the log-loss residuals at theta.
  grad_norm: float  # Of the objective at theta.
  status: int  # CONVERGED, STALLED or ITERATION_LIMIT.
  num_iterations: int  # Refinement iterations of the best start.
  num_starts: int
  num_points: int
  seconds: float  # Wall time, JIT compilation included.
  # [<= BOOTSTRAP_STARTS, 1 + 2k]: near-optimal local optima, best first.
  local_optima: np.ndarray


def start_grid(num_vars: int) -> np.ndarray:
  """The Chinchilla grid of starts, [starts, 1 + 2k]."""
  axes = [E_GRID] + [A_GRID] * num_vars + [ALPHA_GRID] * num_vars
  return np.array(list(itertools.product(*axes)))


def _check_points(log_x: np.ndarray, log_loss: np.ndarray) -> None:
  num_params = 1 + 2 * log_x.shape[1]
  if len(log_loss) <= num_params:
    raise ScalingFitError(
        f'got {len(log_loss)} points, need at least {num_params + 1} for a law'
        f' with {num_params} parameters'
    )
  if not (np.all(np.isfinite(log_x)) and np.all(np.isfinite(log_loss))):
    raise ScalingFitError('sizes and losses must be positive and finite')


def fit_law(
    log_x: np.ndarray, log_loss: np.ndarray, form: str = 'additive'
) -> Fit:
  """Fits the law `form` (`laws.FORMS`) from the Chinchilla grid of starts.

  Two stages, because a vmapped L-BFGS costs as much as its slowest start: every
  start on the grid first runs SCREEN_ITERATIONS cheap iterations (short
  linesearch), then the REFINE_TOP lowest run to convergence. On the Chinchilla
  data ~60 of the 64 refined starts reach the same optimum, which the published
  fit matches; refining all 4,500 starts took minutes rather than seconds.

  Args:
    log_x: [points, k] log of each variable (log N, log D).
    log_loss: [points] log of the loss.
    form: 'additive' or 'multiplicative'.

  Returns:
    The best refined start.
  """
  if form not in FORMS:
    raise ScalingFitError(f'unknown law form {form!r}; choose one of {FORMS}')
  _check_points(log_x, log_loss)
  started = time.perf_counter()
  num_points = len(log_loss)
  log_x, log_loss, weights = padded(log_x, log_loss)
  with jax.enable_x64(True):
    starts = start_grid(log_x.shape[1])
    weights = np.tile(weights, (len(starts), 1))
    screened, objective, *_ = minimise(
        starts,
        weights,
        log_x,
        log_loss,
        form=form,
        max_iterations=SCREEN_ITERATIONS,
        linesearch_steps=SCREEN_LINESEARCH_STEPS,
        chunk_size=SCREEN_CHUNK_SIZE,
    )
    top = np.argsort(np.nan_to_num(np.asarray(objective), nan=np.inf))[
        :REFINE_TOP
    ]
    theta, objective, grad_norm, iterations, status = map(
        np.asarray,
        minimise(
            screened[top],
            weights[top],
            log_x,
            log_loss,
            form=form,
            max_iterations=MAX_ITERATIONS,
            linesearch_steps=LINESEARCH_STEPS,
            chunk_size=REFINE_CHUNK_SIZE,
        ),
    )
  order = np.argsort(np.nan_to_num(objective, nan=np.inf))
  best = order[0]
  near_optimal = order[objective[order] <= NEAR_OPTIMAL * objective[best]]
  return Fit(
      form=form,
      theta=theta[best],
      objective=float(objective[best]),
      grad_norm=float(grad_norm[best]),
      status=int(status[best]),
      num_iterations=int(iterations[best]),
      num_starts=len(starts),
      num_points=num_points,
      seconds=time.perf_counter() - started,
      local_optima=_distinct(theta[near_optimal], BOOTSTRAP_STARTS),
  )


def _distinct(thetas: np.ndarray, limit: int) -> np.ndarray:
  """The first `limit` finite rows of thetas [S, P] unlike any kept before."""
  kept = []
  for theta in thetas:
    if np.all(np.isfinite(theta)) and all(
        np.max(np.abs(theta - other)) > DISTINCT_THETA for other in kept
    ):
      kept.append(theta)
    if len(kept) == limit:
      break
  return np.array(kept)


@dataclasses.dataclass(frozen=True)
class Bootstrap:
  """Refits on resampled data; `thetas` is [resamples, P]."""

  thetas: np.ndarray
  statuses: np.ndarray  # [resamples] status of each resample's best start.
  num_starts: int  # Starts per resample.
  seconds: float


def bootstrap(
    log_x: np.ndarray,
    log_loss: np.ndarray,
    fit: Fit,
    num_resamples: int = 200,
    seed: int = 0,
) -> Bootstrap:
  """Refits on `num_resamples` resamples of the points drawn with replacement.

  A resample is each point's count, used as its weight, so all resamples run as
  one vmapped batch. Each starts from the full-data optimum and any other
  near-optimal local optima the grid found (`fit.local_optima`) rather than from
  the whole grid: resampling moves the optimum a little, and a full fit per
  resample would cost num_resamples times the full-data fit. Refitting some
  resamples from the whole grid gave the same optima to ~1e-7.

  Args:
    log_x: [points, k], as given to `fit_law`.
    log_loss: [points].
    fit: the full-data fit.

  Returns:
    The best start of each resample.
  """
  started = time.perf_counter()
  num_points = len(log_loss)
  picks = np.random.default_rng(seed).integers(
      0, num_points, (num_resamples, num_points)
  )
  log_x, log_loss, _ = padded(log_x, log_loss)
  counts = np.zeros((num_resamples, len(log_loss)))
  np.add.at(counts, (np.arange(num_resamples)[:, None], picks), 1.0)
  num_starts = len(fit.local_optima)
  with jax.enable_x64(True):
    theta, objective, _, _, status = map(
        np.asarray,
        minimise(
            np.tile(fit.local_optima, (num_resamples, 1)),
            np.repeat(counts, num_starts, axis=0),
            log_x,
            log_loss,
            form=fit.form,
            max_iterations=MAX_ITERATIONS,
            linesearch_steps=LINESEARCH_STEPS,
            chunk_size=REFINE_CHUNK_SIZE,
        ),
    )
  objective = np.nan_to_num(objective, nan=np.inf).reshape(
      num_resamples, num_starts
  )
  best = np.argmin(objective, axis=1)
  resample = np.arange(num_resamples)
  theta = theta.reshape(num_resamples, num_starts, -1)[resample, best]
  status = status.reshape(num_resamples, num_starts)[resample, best]
  return Bootstrap(
      thetas=theta,
      statuses=status,
      num_starts=num_starts,
      seconds=time.perf_counter() - started,
  )


def named(
    theta: np.ndarray,
    coefficient_names: Sequence[str],
    exponent_names: Sequence[str],
) -> dict[str, np.ndarray]:
  """E, coefficients and exponents of theta [..., 1 + 2k], each [...]."""
  num_vars = len(coefficient_names)
  values = {'E': np.exp(theta[..., 0])}
  for k, (coefficient, exponent) in enumerate(
      zip(coefficient_names, exponent_names)
  ):
    values[coefficient] = np.exp(theta[..., 1 + k])
    values[exponent] = theta[..., 1 + num_vars + k]
  return values


def flops_per_token_law(n_params: np.ndarray, flops: np.ndarray,
                        tokens: np.ndarray) -> tuple[float, float]:
  """(k, p) of the least-squares fit C/D = k N^p over the runs.

  Training FLOPs per token grow like 6N for large models, but attention adds
  a term proportional to the width rather than N, which dominates small
  models (2x at width 32 here). C = 6ND is k = 6, p = 1.
  """
  p, log_k = np.polyfit(np.log(n_params), np.log(flops / tokens), 1)
  return float(np.exp(log_k)), float(p)


def compute_optimal(
    theta: np.ndarray,
    compute: np.ndarray,
    k: float = 6.0,
    p: float = 1.0,
    form: str = 'additive',
) -> dict[str, np.ndarray]:
  """Compute-optimal N and D from the joint law theta [..., 5], for C = k N^p D.

  Additive: minimising E + A/N^alpha + B/D^beta subject to C = k N^p D gives
  N* = G (C/k)^a and D* = C / (k N*^p), with a = beta/(alpha + p beta),
  b = 1 - p a and G = (alpha A / (p beta B))^(1/(alpha + p beta)). With
  k = 6 and p = 1 this is Hoffmann et al. (2022), eq. 4. Multiplicative,
  (E + B/D^beta)(1 + A/N^alpha): the optimum has no closed form; along the
  budget, d log L / d log N = p beta s(u) - alpha s(v), with s the logistic
  function, u = log(B/(E D^beta)) and v = log(A/N^alpha), rises from -alpha
  to p beta, so bisection finds its zero. Its a and b are the exponents N*
  and D* approach as C grows, the additive ones.

  Args:
    theta: [..., 5] joint-law parameters (e, a, b, alpha, beta).
    compute: [C] training FLOPs.
    k, p: the FLOPs per token C/D = k N^p (see `flops_per_token_law`).
    form: the law theta is of.

  Returns:
    a, b [...]; n_opt, d_opt [..., C]; all NaN where an exponent is not
    positive, as the allocation is then unbounded.
  """
  log_e, log_a, log_b, alpha, beta = (theta[..., i] for i in range(5))
  valid = (alpha > 0) & (beta > 0)
  alpha, beta = np.where(valid, alpha, np.nan), np.where(valid, beta, np.nan)
  a = beta / (alpha + p * beta)
  log_c = np.log(np.asarray(compute) / k)
  if form == 'additive':
    # Logs keep G finite for the huge A and B that small-scale fits can give.
    log_g = (np.log(alpha) + log_a - np.log(p * beta) - log_b) / (
        alpha + p * beta)
    log_n = log_g[..., None] + a[..., None] * log_c
  else:
    log_n = _bisect_log_n(log_e, log_a, log_b, alpha, beta, log_c, p)
  return {
      'a': a,
      'b': 1.0 - p * a,
      'n_opt': np.exp(log_n),
      'd_opt': np.exp(log_c - p * log_n),
  }


def _bisect_log_n(log_e: np.ndarray, log_a: np.ndarray, log_b: np.ndarray,
                  alpha: np.ndarray, beta: np.ndarray, log_c: np.ndarray,
                  p: float) -> np.ndarray:
  """The multiplicative law's optimal log N [..., C] (see `compute_optimal`):
  the parameters are [...], log_c [C]."""
  log_e, log_a, log_b, alpha, beta = (
      np.asarray(x)[..., None] for x in (log_e, log_a, log_b, alpha, beta))
  low = np.full(np.broadcast(alpha, log_c).shape, -100.0)
  high = np.full_like(low, 200.0)
  for _ in range(100):  # Halves a 300-nat bracket to below 1e-27.
    log_n = 0.5 * (low + high)
    u = log_b - log_e - beta * (log_c - p * log_n)
    slope = p * beta * expit(u) - alpha * expit(log_a - alpha * log_n)
    rising = slope > 0
    high, low = np.where(rising, log_n, high), np.where(rising, low, log_n)
  return np.where(np.isnan(alpha + beta), np.nan, 0.5 * (low + high))


def interval(
    samples: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
  """Percentile interval of samples [resamples, ...] over axis 0, sans NaNs."""
  tail = 50.0 * (1.0 - level)
  low, high = np.nanpercentile(samples, [tail, 100.0 - tail], axis=0)
  return low, high
