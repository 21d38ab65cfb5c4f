"""`review/matmuls.py`: a step's matmuls, read from its jaxpr, are all of them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from review import matmuls
from sentiment_jax import models, steps


def test_the_train_steps_matmuls_are_the_flop_formulas():
  config = tiny.get_config()
  model_config = models.TransformerConfig.from_run_config(config, 64)
  state = steps.create_train_state(jax.random.PRNGKey(0), config,
                                   models.Classifier(model_config), 10)
  batch, seq = 4, config.data.max_len
  found = matmuls.step_matmuls(
      steps.train_step, state,
      {'tokens': jnp.ones((batch, seq), jnp.int32),
       'label': jnp.zeros((batch,), jnp.int32)})
  # Per layer: QKV, out and the two MLP matmuls, and attention's two batched
  # products, each with two more in the backward pass; plus the head's three.
  assert len(found) == 3 * 6 * model_config.num_layers + 3
  assert sum(m.flops for m in found) == (
      models.TRAIN_FLOPS_PER_FORWARD * batch
      * models.forward_flops(model_config, seq))


@pytest.mark.parametrize('lhs_shape, rhs_shape, dims', [
    ((6, 5), (5, 4), (((1,), (0,)), ((), ()))),  # Already canonical.
    ((7, 5), (7, 3), (((0,), (0,)), ((), ()))),  # A weight gradient: x^T dy.
    ((2, 3, 4, 5), (2, 6, 4, 5),  # Attention scores, heads on axis 2.
     (((3,), (3,)), ((0, 2), (0, 2)))),
])
def test_a_canonical_matmul_is_the_same_product(lhs_shape, rhs_shape, dims):
  rng = np.random.default_rng(0)
  lhs = rng.standard_normal(lhs_shape, np.float32)
  rhs = rng.standard_normal(rhs_shape, np.float32)
  expected = jax.lax.dot_general(lhs, rhs, dims)
  m = matmuls.Matmul(lhs_shape, rhs_shape, dims, 0)
  c = matmuls.canonical(m)
  (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dims
  free = lambda n, *used: [d for d in range(n) if d not in sum(used, ())]
  lhs_t = lhs.transpose([*lhs_batch, *free(lhs.ndim, lhs_batch, lhs_contract),
                         *lhs_contract])
  rhs_t = rhs.transpose([*rhs_batch, *rhs_contract,
                         *free(rhs.ndim, rhs_batch, rhs_contract)])
  assert (lhs_t.shape, rhs_t.shape) == (c.lhs, c.rhs)
  np.testing.assert_allclose(
      jax.lax.dot_general(lhs_t, rhs_t, c.dimension_numbers), expected,
      rtol=1e-5, atol=1e-5)


def test_the_floor_counts_every_occurrence_of_a_matmul():
  found = [matmuls.Matmul((8, 4), (4, 2), (((1,), (0,)), ((), ())), 128)] * 3
  floor = matmuls.MatmulFloor(found)
  assert (floor.count, floor.flops) == (3, 384)
  floor()
