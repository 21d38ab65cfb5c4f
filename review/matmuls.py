"""The matmuls of a step, read from its jaxpr and timed one by one.

`step_matmuls(fn, *args)` lists every `dot_general` that tracing `fn`
produces, forward and backward, nested jaxprs included. `MatmulFloor` runs
each of them alone, jitted, on random operands of its shapes, and
`TorchMatmulFloor` the same in PyTorch. The sum of their times is what the
step would take if it did nothing but its matmuls, each at the speed it
reaches alone: the benchmark times it in the same rounds as the steps, so
that a step's time splits into its matmuls and the rest (LayerNorm,
softmax, transposes, the optimizer), and the two libraries' matmul kernels
compare on the same products, as ratios from one run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.extend.core as jax_core
import numpy as np


@dataclasses.dataclass(frozen=True)
class Matmul:
  """One `dot_general`: operand shapes, its dimension numbers and FLOPs."""

  lhs: tuple[int, ...]
  rhs: tuple[int, ...]
  dimension_numbers: tuple
  flops: int  # Two per multiply-add.


def step_matmuls(fn: Callable, *args) -> list[Matmul]:
  """Every `dot_general` of `fn(*args)`'s jaxpr, in trace order.

  A matmul inside a loop body counts once, not once per iteration; the
  train steps of this project have no loops.
  """
  found = []

  def visit(jaxpr: jax_core.Jaxpr) -> None:
    for eqn in jaxpr.eqns:
      if eqn.primitive.name == 'dot_general':
        lhs, rhs = (v.aval.shape for v in eqn.invars)
        (lhs_contract, _), _ = eqn.params['dimension_numbers']
        contracted = math.prod(lhs[d] for d in lhs_contract)
        found.append(Matmul(
            tuple(lhs), tuple(rhs), eqn.params['dimension_numbers'],
            2 * math.prod(eqn.outvars[0].aval.shape) * contracted))
      for sub in jax_core.jaxprs_in_params(eqn.params):
        visit(sub)

  visit(jax.make_jaxpr(fn)(*args).jaxpr)
  return found


def gemm_shape(m: Matmul) -> tuple[int, ...]:
  """The GEMM that computes `m`: `(rows, inner, cols)`, or `(batch, rows,
  inner, cols)` with batch dimensions, each the product of `m`'s batch, lhs
  free, contracted and rhs free dimensions. Operands made in that layout
  need no copy first, which would not be matmul time."""
  (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = m.dimension_numbers
  lhs_free = [d for d in range(len(m.lhs))
              if d not in lhs_contract + lhs_batch]
  rhs_free = [d for d in range(len(m.rhs))
              if d not in rhs_contract + rhs_batch]
  size = lambda shape, dims: math.prod(shape[d] for d in dims)
  shape = (size(m.lhs, lhs_batch), size(m.lhs, lhs_free),
           size(m.lhs, lhs_contract), size(m.rhs, rhs_free))
  return shape if lhs_batch else shape[1:]


def _operands(matmuls: list[Matmul]) -> list[tuple[np.ndarray, np.ndarray]]:
  """Random float32 operands of each matmul's GEMM, one pair per distinct
  shape (so a floor keeps one copy, and times matmuls, not allocation)."""
  rng = np.random.default_rng(0)
  pairs = {}
  for shape in map(gemm_shape, matmuls):
    if shape not in pairs:
      *batch, rows, inner, cols = shape
      pairs[shape] = (rng.standard_normal((*batch, rows, inner), np.float32),
                      rng.standard_normal((*batch, inner, cols), np.float32))
  return [pairs[gemm_shape(m)] for m in matmuls]


class MatmulFloor:
  """Calling it runs each of `matmuls` once, alone, in turn, as its GEMM in
  float32 (`jnp.matmul`, jitted once per shape: the first call compiles)."""

  def __init__(self, matmuls: list[Matmul]):
    kernel = jax.jit(jax.numpy.matmul)
    on_device = {}  # One device copy of each distinct pair.
    self._calls = []
    for a, b in _operands(matmuls):
      if id(a) not in on_device:
        on_device[id(a)] = (jax.numpy.asarray(a), jax.numpy.asarray(b))
      self._calls.append((kernel, *on_device[id(a)]))
    self.flops = sum(m.flops for m in matmuls)
    self.count = len(matmuls)

  def __call__(self) -> None:
    for kernel, lhs, rhs in self._calls:
      jax.block_until_ready(kernel(lhs, rhs))


class TorchMatmulFloor:
  """The same, in PyTorch (`torch.matmul`): its kernels on our matmuls."""

  def __init__(self, matmuls: list[Matmul]):
    import torch  # Here, so the JAX variants' processes never load it.

    self._torch = torch
    self._calls = [(torch.from_numpy(a), torch.from_numpy(b))
                   for a, b in _operands(matmuls)]
    self.flops = sum(m.flops for m in matmuls)
    self.count = len(matmuls)

  def __call__(self) -> None:
    with self._torch.no_grad():
      for lhs, rhs in self._calls:
        self._torch.matmul(lhs, rhs)
