"""Starts JAX's multi-process runtime before anything else touches JAX.

One process per host (or per device group); each runs the same command. On
one machine, pass `--coordinator_address=127.0.0.1:PORT --num_processes=N
--process_id=I`; on SLURM or Cloud TPU, `--distributed` lets
`jax.distributed.initialize()` read the cluster's own settings.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import jax
from jax.experimental import multihost_utils

from sentiment_jax.errors import InputError

T = TypeVar('T')


def initialize(coordinator_address: str | None, num_processes: int | None,
               process_id: int | None, auto: bool) -> None:
  """Initialises the runtime as the flags ask; no flags: single process."""
  explicit = (coordinator_address, num_processes, process_id)
  if any(value is not None for value in explicit):
    if any(value is None for value in explicit):
      raise InputError('multi-process needs all of --coordinator_address, '
                       '--num_processes and --process_id (or --distributed '
                       'on a cluster)')
    if not 0 <= process_id < num_processes:
      raise InputError(f'--process_id={process_id} must be in [0, '
                       f'--num_processes={num_processes})')
  if auto or coordinator_address is not None:
    # CPU processes exchange collectives over gloo; GPUs and TPUs ignore it.
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  print(f'JAX {jax.__version__}, process {jax.process_index() + 1}/'
        f'{jax.process_count()}, devices: {jax.devices()}', file=sys.stderr)


def process_0_first(work: Callable[[], T], name: str) -> T:
  """Runs `work` on process 0, then, after a barrier, on the other processes.

  For work that writes shared files the others then read: preparing the TFDS
  data, or training and saving the tokenizer. Single process: just `work()`.
  """
  if jax.process_count() == 1:
    return work()
  if jax.process_index() == 0:
    result = work()
  multihost_utils.sync_global_devices(name)
  if jax.process_index() != 0:
    result = work()
  return result
