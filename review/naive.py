"""The "before" of the code review: a classifier written the way it often is first.

Every defect is deliberate and marked `# Finding N:` with its number in
`review/findings.py`, where its symptom, evidence and fix are recorded. The
encoder has the architecture of `sentiment_jax.models.Classifier`, and
`params_from_ours` converts that model's parameters into this one's (only
the fused QKV kernel is split), so the two can be run on the same weights.
Do not use this module for anything but the review's tests and benchmark.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from sentiment_jax import models


class NaiveAttention(nn.Module):
  """Multi-head self-attention, one head at a time."""

  config: models.TransformerConfig

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
    """x: `[batch, seq, embed]`; mask: `[batch, seq]` (True = real token)."""
    cfg = self.config
    embed = x.shape[-1]
    head_dim = embed // cfg.num_heads
    # Finding 12: three separate projections and a Python loop over heads.
    query = nn.Dense(embed, name='query')(x)
    key = nn.Dense(embed, name='key')(x)
    value = nn.Dense(embed, name='value')(x)
    outputs, all_weights = [], []
    for h in range(cfg.num_heads):
      part = slice(h * head_dim, (h + 1) * head_dim)
      # Finding 4: scaled by the model width, not the head width.
      scores = query[..., part] @ key[..., part].swapaxes(1, 2) / math.sqrt(
          embed)
      # Finding 2: the mask hides padded *queries* (rows), so real queries
      # still attend to padded keys. Finding 3: -inf turns a fully masked
      # row into exp(-inf) / 0 = NaN.
      scores = jnp.where(mask[:, :, None], scores, -jnp.inf)
      weights = jax.nn.softmax(scores, axis=-1)
      all_weights.append(weights)
      outputs.append(weights @ value[..., part])
    self.sow('intermediates', 'attention_weights', jnp.stack(all_weights, 1))
    return nn.Dense(embed, name='out')(jnp.concatenate(outputs, -1))


class NaiveEncoderBlock(nn.Module):
  """Pre-LayerNorm block, as in `models.EncoderBlock`."""

  config: models.TransformerConfig

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
    cfg = self.config
    # Finding 17: x is [batch, seq, embed], so every bias and LayerNorm
    # gradient is a sum over two axes.
    # Finding 5: dropout is always on, so evaluation is random too.
    dropout = nn.Dropout(cfg.dropout_rate, deterministic=False)
    y = NaiveAttention(cfg, name='attention')(nn.LayerNorm()(x), mask)
    x = x + dropout(y)
    y = nn.Dense(cfg.mlp_dim)(nn.LayerNorm()(x))
    y = nn.gelu(y) if cfg.activation == 'gelu' else nn.relu(y)
    return x + dropout(nn.Dense(x.shape[-1])(y))


class NaiveEncoder(nn.Module):
  """Token + position embeddings and the blocks, as in `models.Encoder`."""

  config: models.TransformerConfig

  @nn.compact
  def __call__(self, tokens: jax.Array) -> jax.Array:
    """tokens: `[batch, seq]` ids. Returns `[batch, seq, embed]`."""
    cfg = self.config
    mask = tokens != models.PAD_ID
    x = nn.Embed(cfg.vocab_size, cfg.embed_dim, name='token_embed')(tokens)
    positions = self.param('position_embed', nn.initializers.normal(0.02),
                           (cfg.max_len, cfg.embed_dim))
    # Finding 7: XLA's gather clamps an index past max_len, so a long input
    # silently reuses the last position's embedding instead of failing.
    x = x + positions[jnp.arange(tokens.shape[1])]
    x = nn.Dropout(cfg.dropout_rate, deterministic=False)(x)  # Finding 5.
    for i in range(cfg.num_layers):
      x = NaiveEncoderBlock(cfg, name=f'layer_{i}')(x, mask)
    return nn.LayerNorm(name='final_norm')(x)


class NaiveClassifier(nn.Module):
  """Encoder, mean pooling and a linear head: float32 logits `[batch, classes]`."""

  config: models.TransformerConfig

  @nn.compact
  def __call__(self, tokens: jax.Array) -> jax.Array:
    """tokens: `[batch, seq]` ids, padded with `models.PAD_ID`."""
    x = NaiveEncoder(self.config, name='encoder')(tokens)
    # Finding 1: the mean runs over padding too, so padding moves the logits.
    pooled = x.mean(axis=1)
    return nn.Dense(self.config.num_classes, name='head')(pooled)


def params_from_ours(params: Any) -> Any:
  """`models.Classifier` params as `NaiveClassifier` params (QKV split in 3)."""
  params = jax.tree_util.tree_map(lambda x: x, params)  # A mutable copy.
  encoder = params['encoder']
  for name in [n for n in encoder if n.startswith('layer_')]:
    attention = encoder[name]['attention']
    qkv = attention.pop('qkv')
    embed = qkv['kernel'].shape[0]
    for i, part in enumerate(('query', 'key', 'value')):
      attention[part] = {
          'kernel': qkv['kernel'][:, i * embed:(i + 1) * embed],
          'bias': qkv['bias'][i * embed:(i + 1) * embed]}
  return params


def make_optimizer(learning_rate: float = 1e-3) -> optax.GradientTransformation:
  """The same update rule as `steps.create_train_state`, at a constant rate."""
  return optax.chain(optax.clip_by_global_norm(1.0),
                     optax.adamw(learning_rate, b2=0.98, weight_decay=0.1))


def pad_to_longest(ids: Sequence[np.ndarray]) -> np.ndarray:
  """`[batch, longest]` ids. Finding 8: every new longest length is a new
  shape, and a new shape is a new compilation."""
  longest = max(len(row) for row in ids)
  out = np.full((len(ids), longest), models.PAD_ID, np.int32)
  for i, row in enumerate(ids):
    out[i, :len(row)] = row
  return out


def train(model: NaiveClassifier, params: Any, batches: Iterable[dict],
          seed: int = 0, learning_rate: float = 1e-3
          ) -> tuple[Any, list[float]]:
  """Trains on `{'tokens', 'label'}` batches; returns params and losses."""
  tx = make_optimizer(learning_rate)
  opt_state = tx.init(params)
  # Finding 6: one key, made once and never split, so every step draws the
  # same dropout masks.
  key = jax.random.PRNGKey(seed)
  losses = []
  for batch in batches:

    def step(params, opt_state):
      def loss_fn(params):
        logits = model.apply({'params': params}, batch['tokens'],
                             rngs={'dropout': key})
        return optax.softmax_cross_entropy_with_integer_labels(
            logits, batch['label']).mean()
      loss, grads = jax.value_and_grad(loss_fn)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state, loss

    # Finding 10: a fresh closure jitted on every call (the batch is baked
    # in as a constant), so every step compiles. Finding 11: nothing is
    # donated, so the old params and optimizer state are copied, not reused.
    params, opt_state, loss = jax.jit(step)(params, opt_state)
    losses.append(float(loss))
  return params, losses


def evaluate(model: NaiveClassifier, params: Any, ids: Sequence[np.ndarray],
             labels: np.ndarray, batch_size: int, seed: int = 0
             ) -> tuple[float, int]:
  """(accuracy, number of examples scored)."""
  correct = scored = 0
  # Finding 9: integer division drops the last partial batch.
  for b in range(len(ids) // batch_size):
    part = slice(b * batch_size, (b + 1) * batch_size)
    logits = model.apply({'params': params}, pad_to_longest(ids[part]),
                         rngs={'dropout': jax.random.PRNGKey(seed)})
    correct += int((logits.argmax(-1) == labels[part]).sum())
    scored += batch_size
  return correct / scored, scored
