"""The matmuls of a step, read from its jaxpr and timed one by one.

`step_matmuls(fn, *args)` lists every `dot_general` that tracing `fn`
produces, forward and backward, nested jaxprs included. `MatmulFloor` runs
each of them alone, jitted, on random operands of its shapes. The sum of
their times is what the step would take if it did nothing but its matmuls,
each at the speed it reaches alone: the benchmark times it in the same
rounds as the step, so that the step's time splits into its matmuls and the
rest (LayerNorm, softmax, transposes, the optimizer) as a ratio from one run.
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


def canonical(m: Matmul) -> Matmul:
  """The same product with operands laid out as a batched GEMM wants them:
  lhs `[batch..., free..., contracted...]`, rhs `[batch..., contracted...,
  free...]`. Other layouts make XLA copy an operand first, and that copy is
  not matmul time."""
  (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = m.dimension_numbers
  lhs_free = [d for d in range(len(m.lhs))
              if d not in lhs_contract and d not in lhs_batch]
  rhs_free = [d for d in range(len(m.rhs))
              if d not in rhs_contract and d not in rhs_batch]
  lhs = [*lhs_batch, *lhs_free, *lhs_contract]
  rhs = [*rhs_batch, *rhs_contract, *rhs_free]
  batch, contract = len(lhs_batch), len(lhs_contract)
  dims = ((tuple(range(len(lhs) - contract, len(lhs))),
           tuple(range(batch, batch + contract))),
          (tuple(range(batch)), tuple(range(batch))))
  return Matmul(tuple(m.lhs[d] for d in lhs), tuple(m.rhs[d] for d in rhs),
                dims, m.flops)


class MatmulFloor:
  """Calling it runs each matmul of `matmuls` once, alone, in turn (float32),
  each in its `canonical` layout."""

  def __init__(self, matmuls: list[Matmul]):
    rng = np.random.default_rng(0)
    # Each distinct shape compiles once and keeps its operands, so a call
    # times matmuls, not allocation or compilation.
    kernels = {}
    self._calls = []
    for m in map(canonical, matmuls):
      key = (m.lhs, m.rhs, m.dimension_numbers)
      if key not in kernels:
        dims = m.dimension_numbers
        kernels[key] = (
            jax.jit(lambda a, b, dims=dims: jax.lax.dot_general(a, b, dims)),
            jax.numpy.asarray(rng.standard_normal(m.lhs, np.float32)),
            jax.numpy.asarray(rng.standard_normal(m.rhs, np.float32)))
      self._calls.append(kernels[key])
    self.flops = sum(m.flops for m in matmuls)
    self.count = len(matmuls)
    self()  # Compile every kernel now.

  def __call__(self) -> None:
    for kernel, lhs, rhs in self._calls:
      jax.block_until_ready(kernel(lhs, rhs))
