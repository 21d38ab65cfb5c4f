"""Wall-clock timing of jitted calls, and the in-run f32 matmul peak.

Both benchmarks (`sentiment_jax.benchmark`, `review.benchmark`) time with
these, so an MFU in one means the same as an MFU in the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import jax.numpy as jnp


def time_call(fn: Callable[[], object], repeats: int) -> list[float]:
  """Seconds per call after one warm-up (compile) call."""
  jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return times


def matmul_peak(size: int = 2048, repeats: int = 10) -> float:
  """Best-case f32 FLOP/s of one jitted `[size, size] @ [size, size]`."""
  a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
  matmul = jax.jit(lambda x: x @ x)
  return 2 * size**3 / min(time_call(lambda: matmul(a), repeats))
