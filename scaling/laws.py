"""Scaling laws L = E + sum_k A_k / X_k^alpha_k and their Chinchilla-style fit.

Approach 3 of Hoffmann et al. (2022), as replicated by Besiroglu et al. (2024):
parametrise log L = LSE(a_k - alpha_k * log X_k, ..., e) with A_k = exp(a_k) and
E = exp(e), minimise the Huber loss (delta = 1e-3) of the residuals in log L with
L-BFGS from a grid of starts, and keep the best. One variable (N or D) gives the
single-variable laws; two (N, D) give the joint law.

Every start is an independent L-BFGS run, so `minimise` vmaps one jitted optax
L-BFGS loop over all of them. Fits need float64 (the objective near the optimum is
~1e-6 and its gradient smaller still) while the rest of the project trains in
float32, so the public functions turn x64 on only for their own duration.
"""

import dataclasses
import functools
import itertools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

HUBER_DELTA = 1e-3
# The Chinchilla grid of starts, per parameter: 5 values of e, 6 of each a_k and
# 5 of each alpha_k, i.e. 4,500 starts for the joint law and 150 for one variable.
E_GRID = np.linspace(-1.0, 1.0, 5)
A_GRID = np.linspace(0.0, 25.0, 6)
ALPHA_GRID = np.linspace(0.0, 2.0, 5)


class ScalingFitError(ValueError):
  """Input that cannot be fitted: missing fields, too few points, bad values."""


@dataclasses.dataclass(frozen=True)
class Fit:
  """The best of a grid of L-BFGS runs.

  `theta` is [1 + 2k] for k variables: (e, a_1..a_k, alpha_1..alpha_k).
  """

  theta: np.ndarray
  objective: float  # Mean Huber loss of log-loss residuals at theta.
  grad_norm: float  # Gradient norm of the objective at theta.
  converged: bool  # Stopped on gtol or ftol rather than on max_iterations.
  num_iterations: int
  num_starts: int
  num_starts_converged: int
  num_points: int
  seconds: float  # Wall time of the fit, compilation included.

  @property
  def num_vars(self) -> int:
    return (len(self.theta) - 1) // 2

  @property
  def E(self) -> float:  # pylint: disable=invalid-name
    return float(np.exp(self.theta[0]))

  @property
  def coefficients(self) -> np.ndarray:
    """A_k, [k]."""
    return np.exp(self.theta[1 : 1 + self.num_vars])

  @property
  def exponents(self) -> np.ndarray:
    """alpha_k, [k]."""
    return self.theta[1 + self.num_vars :]


def predict_log_loss(theta: jax.Array, log_x: jax.Array) -> jax.Array:
  """log L = LSE(a_k - alpha_k log X_k, e) for theta [1 + 2k], log_x [points, k] -> [points]."""
  num_vars = log_x.shape[1]
  terms = theta[1 : 1 + num_vars] - log_x * theta[1 + num_vars :]  # [points, k]
  # A hand-written LSE over k + 1 terms fuses into one loop; jax.nn.logsumexp
  # over a concatenated array runs ~2x slower here, and this is the hot spot.
  peak = jax.lax.stop_gradient(jnp.maximum(terms.max(axis=1), theta[0]))
  total = jnp.exp(terms - peak[:, None]).sum(axis=1) + jnp.exp(theta[0] - peak)
  return peak + jnp.log(total)


def huber_objective(theta, log_x, log_loss, weights) -> jax.Array:
  """Weighted mean Huber loss of log-loss residuals; weights [points] are bootstrap counts."""
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


def _minimise_one(theta, weights, log_x, log_loss, max_iterations, gtol, ftol):
  """One L-BFGS run from theta [P]; returns (theta, objective, grad_norm, iterations, converged)."""
  objective = functools.partial(
      huber_objective, log_x=log_x, log_loss=log_loss, weights=weights
  )
  solver = optax.lbfgs()
  # optax.value_and_grad_from_state would read these back with a lax.cond, but
  # under vmap that cond becomes a select that recomputes the gradient every
  # iteration; seeding the linesearch state once and reading it back avoids that.
  value, grad = jax.value_and_grad(objective)(theta)
  state = optax.tree_utils.tree_set(solver.init(theta), value=value, grad=grad)

  def step(carry):
    theta, state, _, iteration = carry
    value = optax.tree_utils.tree_get(state, "value")
    grad = optax.tree_utils.tree_get(state, "grad")
    updates, state = solver.update(
        grad, state, theta, value=value, grad=grad, value_fn=objective
    )
    return optax.apply_updates(theta, updates), state, value, iteration + 1

  def done(state, previous_value):
    value = optax.tree_utils.tree_get(state, "value")
    grad_norm = optax.tree_utils.tree_norm(optax.tree_utils.tree_get(state, "grad"))
    # Near the optimum most residuals sit on the linear arm of the Huber loss, so
    # the objective is nearly piecewise linear and the gradient need not vanish:
    # a stalled decrease (scipy's ftol test) counts as converged too.
    return (grad_norm <= gtol) | (previous_value - value <= ftol * jnp.abs(value))

  def keep_going(carry):
    _, state, previous_value, iteration = carry
    return (iteration < max_iterations) & ~done(state, previous_value)

  theta, state, previous_value, iterations = jax.lax.while_loop(
      keep_going, step, (theta, state, jnp.inf, 0)
  )
  value = optax.tree_utils.tree_get(state, "value")
  grad_norm = optax.tree_utils.tree_norm(optax.tree_utils.tree_get(state, "grad"))
  return theta, value, grad_norm, iterations, done(state, previous_value)


@functools.partial(
    jax.jit, static_argnames=("max_iterations", "gtol", "ftol", "chunk_size")
)
def minimise(
    starts: jax.Array,
    weights: jax.Array,
    log_x: jax.Array,
    log_loss: jax.Array,
    *,
    max_iterations: int = 500,
    gtol: float = 1e-10,
    ftol: float = 1e-10,
    chunk_size: int = 256,
):
  """Runs L-BFGS from every start, vmapped within chunks of `chunk_size` starts.

  A vmapped while_loop runs until its slowest member stops, so chunks let the
  many quick starts finish without waiting for the few slow ones.

  Args:
    starts: [S, P] initial theta.
    weights: [S, points] per-start weights of the data points.
    log_x: [points, k] log of each variable.
    log_loss: [points] log of the loss.

  Returns:
    theta [S, P], objective [S], grad_norm [S], iterations [S], converged [S].
  """
  run = functools.partial(
      _minimise_one,
      log_x=log_x,
      log_loss=log_loss,
      max_iterations=max_iterations,
      gtol=gtol,
      ftol=ftol,
  )
  return jax.lax.map(lambda args: run(*args), (starts, weights), batch_size=chunk_size)
