"""`review/matmuls.py`: the matmuls read from a step's jaxpr are all of them."""

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from helpers import NEEDS_TORCH, require
from review import matmuls
from sentiment_jax import models, steps


def test_the_train_steps_matmuls_are_the_flop_formulas():
  config = tiny.get_config()
  model_config = models.TransformerConfig.from_run_config(
      config, 64, models.TransformerConfig.NO_NEGATION_IDS)
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


@pytest.mark.parametrize('lhs_shape, rhs_shape, dims, gemm', [
    ((6, 5), (5, 4), (((1,), (0,)), ((), ())), (6, 5, 4)),
    ((7, 5), (7, 3), (((0,), (0,)), ((), ())), (5, 7, 3)),  # x^T dy.
    ((2, 3, 4, 5), (2, 6, 4, 5),  # Attention scores, heads on axis 2.
     (((3,), (3,)), ((0, 2), (0, 2))), (8, 3, 5, 6)),
])
def test_a_matmul_is_its_gemm(lhs_shape, rhs_shape, dims, gemm):
  # The GEMM of gemm_shape, on the operands laid out as it wants them,
  # computes the matmul's product, and the same FLOPs.
  assert matmuls.gemm_shape(matmuls.Matmul(lhs_shape, rhs_shape, dims, 0)) \
      == gemm
  rng = np.random.default_rng(0)
  lhs = rng.standard_normal(lhs_shape, np.float32)
  rhs = rng.standard_normal(rhs_shape, np.float32)
  (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dims
  free = lambda x, *used: [d for d in range(x.ndim) if d not in sum(used, ())]
  *batch, rows, inner, cols = gemm
  lhs_gemm = lhs.transpose([*lhs_batch, *free(lhs, lhs_batch, lhs_contract),
                            *lhs_contract]).reshape(*batch, rows, inner)
  rhs_gemm = rhs.transpose([*rhs_batch, *rhs_contract,
                            *free(rhs, rhs_batch, rhs_contract)]).reshape(
                                *batch, inner, cols)
  np.testing.assert_allclose(
      lhs_gemm @ rhs_gemm,
      np.asarray(jax.lax.dot_general(lhs, rhs, dims)).reshape(
          *batch, rows, cols), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('floor', [matmuls.MatmulFloor,
                                   matmuls.TorchMatmulFloor])
def test_a_floor_counts_every_occurrence_of_a_matmul(floor):
  if floor is matmuls.TorchMatmulFloor:
    require(importlib.util.find_spec('torch') is not None, NEEDS_TORCH)
  found = [matmuls.Matmul((8, 4), (4, 2), (((1,), (0,)), ((), ())), 128)] * 3
  floor = floor(found)
  assert (floor.count, floor.flops) == (3, 384)
  floor()
