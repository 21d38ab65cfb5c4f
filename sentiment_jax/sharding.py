"""Data parallelism: the device mesh, global arrays, and the jitted eval step.

A 1-D mesh named 'data' spans every device of every process. Params are
replicated and batches are split along 'data'. Every process holds the same
global batch (the data order is a pure function of the seed), and global
arrays are built with `jax.make_array_from_callback`, which asks each process
only for the slices its own devices hold, whatever the device order. Outputs
are replicated, so every process reads all of them back.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import numpy as np
import tqdm
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sentiment_jax import input_pipeline, models


class DataParallel:
  """The mesh, its two shardings, and the jitted eval step of `eval_model`."""

  def __init__(self, eval_model: nn.Module):
    """`eval_model` is the deterministic model `eval_step` applies."""
    self.eval_model = eval_model
    self.mesh = Mesh(np.asarray(jax.devices()), ('data',))
    self.replicated = NamedSharding(self.mesh, P())
    self.data = NamedSharding(self.mesh, P('data'))

    def eval_step(params: Any, tokens: jax.Array) -> jax.Array:
      """Float32 logits `[batch, classes]` for tokens `[batch, seq]`."""
      return eval_model.apply({'params': params}, tokens)

    def pooled_step(params: Any, tokens: jax.Array) -> jax.Array:
      """The pooled representation `[batch, embed]` the head reads."""
      _, state = eval_model.apply({'params': params}, tokens,
                                  mutable=['intermediates'])
      return state['intermediates']['pooled'][0]

    self.eval_step, self.pooled_step = (
        jax.jit(step, in_shardings=(self.replicated, self.data),
                out_shardings=self.replicated)
        for step in (eval_step, pooled_step))

  def replicate(self, tree: Any) -> Any:
    """A copy of `tree` on every device; each process passes the same values."""
    def put(leaf):
      value = np.asarray(leaf)
      return jax.make_array_from_callback(value.shape, self.replicated,
                                          lambda index: value[index])
    return jax.tree_util.tree_map(put, tree)

  def shard(self, batch: dict[str, np.ndarray],
            keys: tuple[str, ...] = ('tokens', 'label')
            ) -> dict[str, jax.Array]:
    """`batch[key]` (`tokens` `[batch, seq]`, `label` `[batch]`) split along
    'data', for each of `keys`."""
    return {key: jax.make_array_from_callback(
                batch[key].shape, self.data,
                lambda index, value=batch[key]: value[index])
            for key in keys}

  def logits(self, params: Any, encoded: input_pipeline.Encoded, *,
             batch_size: int, pad_multiple: int, max_len: int,
             progress: str | None = None, step: Any = None) -> np.ndarray:
    """`step`'s float32 output `[n, ...]` for every encoded text, in input
    order: logits `[n, classes]` from `eval_step` unless another is given."""
    step = step or self.eval_step
    # Few texts (predict) get a small batch, not one padded with filler rows;
    # it stays a multiple of the device count for the data sharding.
    devices = jax.device_count()
    batch_size = min(batch_size, -(-len(encoded.ids) // devices) * devices)
    out = None
    labels = np.zeros(len(encoded.ids), np.int32)
    batches = input_pipeline.eval_batches(
        encoded, labels, batch_size=batch_size, pad_multiple=pad_multiple,
        max_len=max_len)
    total = -(-len(encoded.ids) // batch_size)
    for batch in tqdm.tqdm(batches, total=total, desc=progress, leave=False,
                           disable=progress is None or jax.process_index()):
      tokens = self.shard(batch, ('tokens',))['tokens']
      values = np.asarray(step(params, tokens), np.float32)
      if out is None:
        out = np.zeros((len(encoded.ids),) + values.shape[1:], np.float32)
      real = batch['weight'] > 0
      out[batch['index'][real]] = values[real]
    if out is None:  # No texts.
      out = np.zeros((0, models.TransformerConfig.num_classes), np.float32)
    return out
