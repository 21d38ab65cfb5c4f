"""Scaling laws in N and D, their Huber objective, and a batched L-BFGS.

Two forms. Additive, approach 3 of Hoffmann et al. (2022) as replicated by
Besiroglu et al. (2024): L = E + sum_k A_k / X_k^alpha_k, parametrised as
log L = LSE(a_k - alpha_k log X_k, ..., e) with A_k = exp(a_k), E = exp(e).
Multiplicative: L = (E + B/D^beta) prod_j (1 + A_j/N_j^alpha_j), where the
last variable (D) adds to the floor and every other scales the sum, so that a
larger model lowers the loss by the same fraction at every D; log L is then
LSE(e, b - beta log D) + sum_j softplus(a_j - alpha_j log X_j). With one
variable the two are the same law. Both minimise the Huber loss
(delta = 1e-3) of the residuals in log L. Every start is an independent
L-BFGS run, so `minimise` vmaps one jitted optax L-BFGS loop over all of
them. `fitting` drives it from a grid of starts and bootstraps it.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

HUBER_DELTA = 1e-3
# Gradient norm that counts as converged: gradients of the mean Huber loss
# scale with HUBER_DELTA, so this is ~1e-7 of their typical size.
GTOL = 1e-10
# Why an L-BFGS run stopped: gradient norm <= GTOL; an iteration that did not
# lower the objective; MAX_ITERATIONS.
CONVERGED, STALLED, ITERATION_LIMIT = 0, 1, 2
FORMS = ('additive', 'multiplicative')


class ScalingFitError(ValueError):
  """Input that cannot be fitted: missing fields, too few points, bad values."""


def predict_log_loss(
    theta: jax.Array, log_x: jax.Array, form: str = 'additive'
) -> jax.Array:
  """log L for theta [1 + 2k] at log_x [points, k] in `form`; [points]."""
  num_vars = log_x.shape[1]
  terms = theta[1 : 1 + num_vars] - log_x * theta[1 + num_vars :]  # [points, k]
  if form == 'multiplicative':
    scales = jax.nn.softplus(terms[:, :-1]).sum(axis=1)  # log(1 + A/N^alpha)
    terms = terms[:, -1:]
  else:
    scales = 0.0
  # A hand-written LSE fuses into one loop; jax.nn.logsumexp over a concatenated
  # array is ~2x slower here, and this is where the fit spends its time.
  peak = jax.lax.stop_gradient(jnp.maximum(terms.max(axis=1), theta[0]))
  total = jnp.exp(terms - peak[:, None]).sum(axis=1) + jnp.exp(theta[0] - peak)
  return peak + jnp.log(total) + scales


def predict(
    theta: np.ndarray, log_x: np.ndarray, form: str = 'additive'
) -> np.ndarray:
  """L (not log L) for theta [1 + 2k] at log_x [points, k]; [points] float64."""
  with jax.enable_x64(True):
    return np.exp(np.asarray(
        predict_log_loss(jnp.asarray(theta), jnp.asarray(log_x), form)))


def huber_objective(
    theta: jax.Array, log_x: jax.Array, log_loss: jax.Array, weights: jax.Array,
    form: str
) -> jax.Array:
  """Weighted mean Huber loss of the log-loss residuals; weights [points]."""
  residual = predict_log_loss(theta, log_x, form) - log_loss
  size = jnp.abs(residual)
  huber = jnp.where(
      size <= HUBER_DELTA,
      0.5 * residual**2,
      HUBER_DELTA * (size - 0.5 * HUBER_DELTA),
  )
  return jnp.dot(weights, huber) / weights.sum()


class Iterate(NamedTuple):
  theta: jax.Array  # [P]
  value: jax.Array  # Objective at theta.
  grad_norm: jax.Array


def minimise_one(
    theta: jax.Array,
    weights: jax.Array,
    *,
    log_x: jax.Array,
    log_loss: jax.Array,
    form: str,
    max_iterations: int,
    linesearch_steps: int,
) -> tuple[jax.Array, ...]:
  """One L-BFGS run from theta [P]; see `minimise`."""
  objective = functools.partial(
      huber_objective, log_x=log_x, log_loss=log_loss, weights=weights,
      form=form
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

  def iterate(theta, state) -> Iterate:
    grad = optax.tree_utils.tree_get(state, 'grad')
    value = optax.tree_utils.tree_get(state, 'value')
    return Iterate(theta, value, optax.tree_utils.tree_norm(grad))

  def status(current: Iterate, previous: Iterate) -> jax.Array:
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
      keep_going, step, (theta, state, Iterate(theta, infinity, infinity), 0)
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
    static_argnames=('form', 'max_iterations', 'linesearch_steps',
                     'chunk_size'),
)
def minimise(
    starts: jax.Array,
    weights: jax.Array,
    log_x: jax.Array,
    log_loss: jax.Array,
    *,
    form: str,
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
    form: one of FORMS.
    max_iterations: L-BFGS iterations at most.
    linesearch_steps: zoom linesearch steps at most per iteration.
    chunk_size: starts vmapped together.

  Returns:
    theta [S, P], objective [S], grad_norm [S], iterations [S] and status [S]
    (CONVERGED, STALLED or ITERATION_LIMIT).
  """
  run = functools.partial(
      minimise_one,
      log_x=log_x,
      log_loss=log_loss,
      form=form,
      max_iterations=max_iterations,
      linesearch_steps=linesearch_steps,
  )
  return jax.lax.map(
      lambda args: run(*args), (starts, weights), batch_size=chunk_size
  )


def padded(
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
