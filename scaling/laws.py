"""Scaling laws L = E + sum_k A_k / X_k^alpha_k and their Chinchilla-style fit.

Approach 3 of Hoffmann et al. (2022), as replicated by Besiroglu et al.
(2024): parametrise log L = LSE(a_k - alpha_k log X_k, ..., e) with
A_k = exp(a_k) and E = exp(e), minimise the Huber loss (delta = 1e-3) of the
residuals in log L with L-BFGS from a grid of starts, and keep the best. One
variable (N or D) gives a single-variable law; two give the joint L(N, D).

Every start is an independent L-BFGS run, so `_minimise` vmaps one jitted
optax L-BFGS loop over all of them. The fit needs float64 (the objective near
the optimum is ~1e-6 and its gradient ~1e-11) while the rest of the project
trains in float32, so the public functions turn x64 on only while they run.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import functools
import itertools
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

HUBER_DELTA = 1e-3
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
# Gradient norm that counts as converged: gradients of the mean Huber loss
# scale with HUBER_DELTA, so this is ~1e-7 of their typical size.
GTOL = 1e-10
# Bootstrap starts: up to BOOTSTRAP_STARTS distinct local optima of the
# full-data fit (some parameter differs by more than DISTINCT_THETA) whose
# objective is within NEAR_OPTIMAL of the best. Resampling moves the mean
# objective by ~1/sqrt(points) of itself, so a basin 50% worse on all the data
# will not win a resample of more than a handful of points; seeding from such
# basins made the Chinchilla bootstrap 10x slower for identical intervals.
BOOTSTRAP_STARTS = 4
DISTINCT_THETA = 0.1
NEAR_OPTIMAL = 1.5


# Why an L-BFGS run stopped: gradient norm <= GTOL; an iteration that did not
# lower the objective; MAX_ITERATIONS.
CONVERGED, STALLED, ITERATION_LIMIT = 0, 1, 2


class ScalingFitError(ValueError):
  """Input that cannot be fitted: missing fields, too few points, bad values."""


@dataclasses.dataclass(frozen=True)
class Fit:
  """The best of a grid of L-BFGS runs.

  `theta` is [1 + 2k] for k variables: (e, a_1..a_k, alpha_1..alpha_k).
  """

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


def predict_log_loss(theta: jax.Array, log_x: jax.Array) -> jax.Array:
  """log L for theta [1 + 2k] at log_x [points, k]; returns [points]."""
  num_vars = log_x.shape[1]
  terms = theta[1 : 1 + num_vars] - log_x * theta[1 + num_vars :]  # [points, k]
  # A hand-written LSE fuses into one loop; jax.nn.logsumexp over a concatenated
  # array is ~2x slower here, and this is where the fit spends its time.
  peak = jax.lax.stop_gradient(jnp.maximum(terms.max(axis=1), theta[0]))
  total = jnp.exp(terms - peak[:, None]).sum(axis=1) + jnp.exp(theta[0] - peak)
  return peak + jnp.log(total)


def predict(theta: np.ndarray, log_x: np.ndarray) -> np.ndarray:
  """L (not log L) for theta [1 + 2k] at log_x [points, k]; [points] float64."""
  with jax.enable_x64(True):
    return np.exp(
        np.asarray(predict_log_loss(jnp.asarray(theta), jnp.asarray(log_x)))
    )


def huber_objective(
    theta: jax.Array, log_x: jax.Array, log_loss: jax.Array, weights: jax.Array
) -> jax.Array:
  """Weighted mean Huber loss of the log-loss residuals; weights [points]."""
  residual = predict_log_loss(theta, log_x) - log_loss
  size = jnp.abs(residual)
  huber = jnp.where(
      size <= HUBER_DELTA,
      0.5 * residual**2,
      HUBER_DELTA * (size - 0.5 * HUBER_DELTA),
  )
  return jnp.dot(weights, huber) / weights.sum()


def start_grid(num_vars: int) -> np.ndarray:
  """The Chinchilla grid of starts, [starts, 1 + 2k]."""
  axes = [E_GRID] + [A_GRID] * num_vars + [ALPHA_GRID] * num_vars
  return np.array(list(itertools.product(*axes)))


class _Iterate(NamedTuple):
  theta: jax.Array  # [P]
  value: jax.Array  # Objective at theta.
  grad_norm: jax.Array


def _minimise_one(
    theta: jax.Array,
    weights: jax.Array,
    *,
    log_x: jax.Array,
    log_loss: jax.Array,
    max_iterations: int,
    linesearch_steps: int,
) -> tuple[jax.Array, ...]:
  """One L-BFGS run from theta [P]; see `_minimise`."""
  objective = functools.partial(
      huber_objective, log_x=log_x, log_loss=log_loss, weights=weights
  )
  solver = optax.lbfgs(
      linesearch=optax.scale_by_zoom_linesearch(
          max_linesearch_steps=linesearch_steps, initial_guess_strategy='one'
      )
  )
  # optax.value_and_grad_from_state reads value and grad back through a
  # lax.cond, which vmap turns into a select that recomputes the gradient every
  # iteration. Seeding the linesearch state and reading it back avoids that.
  value, grad = jax.value_and_grad(objective)(theta)
  state = optax.tree_utils.tree_set(solver.init(theta), value=value, grad=grad)

  def iterate(theta, state) -> _Iterate:
    grad = optax.tree_utils.tree_get(state, 'grad')
    value = optax.tree_utils.tree_get(state, 'value')
    return _Iterate(theta, value, optax.tree_utils.tree_norm(grad))

  def status(current: _Iterate, previous: _Iterate) -> jax.Array:
    # Most residuals at the optimum sit on the linear arm of the Huber loss, so
    # the linesearch can run out of decrease before the gradient reaches GTOL:
    # STALLED, where the objective stopped falling, is usually the optimum too.
    return jnp.where(
        current.grad_norm <= GTOL,
        CONVERGED,
        jnp.where(current.value >= previous.value, STALLED, ITERATION_LIMIT),
    )

  def keep_going(carry):
    theta, state, previous, iteration = carry
    running = status(iterate(theta, state), previous) == ITERATION_LIMIT
    return running & (iteration < max_iterations)

  def step(carry):
    theta, state, _, iteration = carry
    previous = iterate(theta, state)
    grad = optax.tree_utils.tree_get(state, 'grad')
    updates, state = solver.update(
        grad, state, theta, value=previous.value, grad=grad, value_fn=objective
    )
    return optax.apply_updates(theta, updates), state, previous, iteration + 1

  infinity = jnp.asarray(jnp.inf, value.dtype)
  theta, state, previous, iterations = jax.lax.while_loop(
      keep_going, step, (theta, state, _Iterate(theta, infinity, infinity), 0)
  )
  current = iterate(theta, state)
  # A failed linesearch may still step uphill; keep the better iterate.
  best = jax.tree.map(
      lambda new, old: jnp.where(current.value > previous.value, old, new),
      current,
      previous,
  )
  return (*best, iterations, status(current, previous))


@functools.partial(
    jax.jit,
    static_argnames=('max_iterations', 'linesearch_steps', 'chunk_size'),
)
def _minimise(
    starts: jax.Array,
    weights: jax.Array,
    log_x: jax.Array,
    log_loss: jax.Array,
    *,
    max_iterations: int,
    linesearch_steps: int,
    chunk_size: int,
) -> tuple[jax.Array, ...]:
  """Runs L-BFGS from every start, vmapped within chunks of `chunk_size` starts.

  A vmapped while_loop runs until its slowest member stops, and so does every
  zoom linesearch inside it, so chunks let quick starts finish without waiting
  for slow ones (and keep the working set in cache).

  Args:
    starts: [S, P] initial theta.
    weights: [S, points] per-start weights of the data points.
    log_x: [points, k] log of each variable.
    log_loss: [points] log of the loss.
    max_iterations: L-BFGS iterations at most.
    linesearch_steps: zoom linesearch steps at most per iteration.
    chunk_size: starts vmapped together.

  Returns:
    theta [S, P], objective [S], grad_norm [S], iterations [S] and status [S]
    (CONVERGED, STALLED or ITERATION_LIMIT).
  """
  run = functools.partial(
      _minimise_one,
      log_x=log_x,
      log_loss=log_loss,
      max_iterations=max_iterations,
      linesearch_steps=linesearch_steps,
  )
  return jax.lax.map(
      lambda args: run(*args), (starts, weights), batch_size=chunk_size
  )


def _padded(
    log_x: np.ndarray, log_loss: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Pads the points with zero-weight rows to a power of two (at least 8).

  Compiling the fit takes seconds, and padding lets fits of different sizes (a
  sweep, its held-out subset, its slices) share one compilation.

  Returns:
    log_x [size, k], log_loss [size], weights [size] (1 for real points).
  """
  size = max(8, 1 << (len(log_loss) - 1).bit_length())
  extra = size - len(log_loss)
  return (
      np.pad(log_x, ((0, extra), (0, 0))),
      np.pad(log_loss, (0, extra)),
      np.pad(np.ones(len(log_loss)), (0, extra)),
  )


def _check_points(log_x: np.ndarray, log_loss: np.ndarray) -> None:
  num_params = 1 + 2 * log_x.shape[1]
  if len(log_loss) <= num_params:
    raise ScalingFitError(
        f'got {len(log_loss)} points, need at least {num_params + 1} for a law'
        f' with {num_params} parameters'
    )
  if not (np.all(np.isfinite(log_x)) and np.all(np.isfinite(log_loss))):
    raise ScalingFitError('sizes and losses must be positive and finite')


def fit_law(log_x: np.ndarray, log_loss: np.ndarray) -> Fit:
  """Fits log L = LSE(a_k - alpha_k log X_k, e) from the Chinchilla grid.

  Two stages, because a vmapped L-BFGS costs as much as its slowest start: every
  start on the grid first runs SCREEN_ITERATIONS cheap iterations (short
  linesearch), then the REFINE_TOP lowest run to convergence. On the Chinchilla
  data ~60 of the 64 refined starts reach the same optimum, which the published
  fit matches; refining all 4,500 starts took minutes rather than seconds.

  Args:
    log_x: [points, k] log of each variable (log N, log D).
    log_loss: [points] log of the loss.

  Returns:
    The best refined start.
  """
  _check_points(log_x, log_loss)
  started = time.perf_counter()
  num_points = len(log_loss)
  log_x, log_loss, weights = _padded(log_x, log_loss)
  with jax.enable_x64(True):
    starts = start_grid(log_x.shape[1])
    weights = np.tile(weights, (len(starts), 1))
    screened, objective, *_ = _minimise(
        starts,
        weights,
        log_x,
        log_loss,
        max_iterations=SCREEN_ITERATIONS,
        linesearch_steps=SCREEN_LINESEARCH_STEPS,
        chunk_size=SCREEN_CHUNK_SIZE,
    )
    top = np.argsort(np.nan_to_num(np.asarray(objective), nan=np.inf))[
        :REFINE_TOP
    ]
    theta, objective, grad_norm, iterations, status = map(
        np.asarray,
        _minimise(
            screened[top],
            weights[top],
            log_x,
            log_loss,
            max_iterations=MAX_ITERATIONS,
            linesearch_steps=LINESEARCH_STEPS,
            chunk_size=REFINE_CHUNK_SIZE,
        ),
    )
  order = np.argsort(np.nan_to_num(objective, nan=np.inf))
  best = order[0]
  near_optimal = order[objective[order] <= NEAR_OPTIMAL * objective[best]]
  return Fit(
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
  log_x, log_loss, _ = _padded(log_x, log_loss)
  counts = np.zeros((num_resamples, len(log_loss)))
  np.add.at(counts, (np.arange(num_resamples)[:, None], picks), 1.0)
  num_starts = len(fit.local_optima)
  with jax.enable_x64(True):
    theta, objective, _, _, status = map(
        np.asarray,
        _minimise(
            np.tile(fit.local_optima, (num_resamples, 1)),
            np.repeat(counts, num_starts, axis=0),
            log_x,
            log_loss,
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


def compute_optimal(
    theta: np.ndarray, compute: np.ndarray
) -> dict[str, np.ndarray]:
  """Compute-optimal N and D from the joint law theta [..., 5], for C = 6 N D.

  Minimising E + A/N^alpha + B/D^beta subject to C = 6ND gives
  N* = G (C/6)^a and D* = (C/6)^b / G, with a = beta/(alpha+beta),
  b = alpha/(alpha+beta) and G = (alpha A / (beta B))^(1/(alpha+beta))
  (Hoffmann et al. 2022, eq. 4).

  Args:
    theta: [..., 5] joint-law parameters (e, a, b, alpha, beta).
    compute: [C] training FLOPs.

  Returns:
    a, b [...]; n_opt, d_opt [..., C]; all NaN where an exponent is not
    positive, as the allocation is then unbounded.
  """
  log_a, log_b, alpha, beta = (theta[..., i] for i in range(1, 5))
  valid = (alpha > 0) & (beta > 0)
  alpha, beta = np.where(valid, alpha, np.nan), np.where(valid, beta, np.nan)
  # Logs keep G finite for the huge A and B that small-scale fits can give.
  log_g = (np.log(alpha) + log_a - np.log(beta) - log_b) / (alpha + beta)
  a, b = beta / (alpha + beta), alpha / (alpha + beta)
  log_c = np.log(np.asarray(compute) / 6.0)
  return {
      'a': a,
      'b': b,
      'n_opt': np.exp(log_g[..., None] + a[..., None] * log_c),
      'd_opt': np.exp(-log_g[..., None] + b[..., None] * log_c),
  }


def interval(
    samples: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
  """Percentile interval of samples [resamples, ...] over axis 0, sans NaNs."""
  tail = 50.0 * (1.0 - level)
  low, high = np.nanpercentile(samples, [tail, 100.0 - tail], axis=0)
  return low, high
