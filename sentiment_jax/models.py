"""A pre-LayerNorm transformer encoder for sequence classification (Flax linen).

Sown (`model.apply(..., mutable=['intermediates'])`): every attention layer's
probabilities, `['encoder']['layer_{i}']['attention']['attention_weights']`,
each a 1-tuple of `[batch, heads, q_len, k_len]` (q_len 1 in a [CLS]
classifier's last layer unless `every_position=True`); the word (token and
n-gram) embeddings, `['encoder']['word_embeddings']`, and the encoder's input
before positions, `['input_embeddings']` (both `[batch, seq, embed]`); the
pooled `['pooled']` (`[batch, embed]`). `pretrain_models` reuses `Encoder`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

PAD_ID = 0  # The tokenizer reserves id 0 for padding; the mask is derived from it.


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
  """Hyper-parameters of the encoder; `replace(deterministic=True)` for eval."""

  vocab_size: int
  max_len: int
  num_layers: int = 2
  num_heads: int = 2
  embed_dim: int = 128
  mlp_dim: int = 512
  num_classes: int = 2
  dropout_rate: float = 0.0
  attention_dropout_rate: float = 0.0
  word_dropout_rate: float = 0.0
  ngram_buckets: int = 0  # Hashed n-gram embedding rows; 0 = no n-gram embeddings.
  ngram_max: int = 2  # Longest n-gram embedded (orders 2..ngram_max).
  ngram_dim: int = 64  # Width of the n-gram table, projected up to embed_dim.
  ngram_skip_negated: bool = False  # Leave out n-grams touching a negation.
  pooling: str = 'mean'  # 'mean' over real tokens, or 'cls' (position 0).
  # Negation scope (`negation_scope`, within `negation_window` pieces if > 0;
  # () = none): `negation_embed` adds a learned vector, `negation_flip` first
  # applies a learned gain from -1, `silence_negators` zeroes "not" itself.
  negator_ids: tuple[int, ...] = ()
  clause_end_ids: tuple[int, ...] = ()
  negation_embed: bool = True
  negation_flip: bool = False
  negation_window: int = 0
  silence_negators: bool = False
  # Contrast scope (`contrast_scope`; () = none): a learned gain from 0.
  contrast_ids: tuple[int, ...] = ()
  sentence_end_ids: tuple[int, ...] = ()
  activation: str = 'gelu'  # 'gelu' (tanh approximation) or 'relu'.
  dtype: Any = jnp.float32  # Compute dtype; parameters stay float32.
  deterministic: bool = False

  def replace(self, **kwargs) -> 'TransformerConfig':
    return dataclasses.replace(self, **kwargs)

  # For a caller with no tokenizer (benchmarks, FLOPs, the twin): no scope.
  NO_NEGATION_IDS = ((), (), (), ())

  @classmethod
  def from_run_config(cls, config: Any, vocab_size: int,
                      negation_ids: tuple[tuple[int, ...], ...] | None = None
                      ) -> 'TransformerConfig':
    """From a run config's `model` and `data.max_len` (a ConfigDict), with
    the scope words' ids (`input_pipeline.negation_ids` of the run's
    tokenizer) when a negation or contrast option is on."""
    m = config.model
    scoped = m.negation_scope or m.negation_flip
    if (scoped or m.contrast_scope) and not negation_ids:
      raise ValueError('model.negation_scope, negation_flip and contrast_scope'
                       " need the negation_ids of the run's tokenizer")
    negators, clause_ends, contrasts, sentence_ends = (
        negation_ids or cls.NO_NEGATION_IDS)
    copied = ('num_layers', 'num_heads', 'embed_dim', 'mlp_dim',
              'dropout_rate', 'attention_dropout_rate', 'word_dropout_rate',
              'ngram_buckets', 'ngram_max', 'ngram_dim', 'pooling',
              'activation', 'negation_flip', 'negation_window',
              'silence_negators', 'ngram_skip_negated')
    return cls(vocab_size=vocab_size, max_len=config.data.max_len,
               **{name: m[name] for name in copied},
               negator_ids=tuple(negators) if scoped else (),
               clause_end_ids=tuple(clause_ends) if scoped else (),
               negation_embed=bool(m.negation_scope),
               contrast_ids=tuple(contrasts) if m.contrast_scope else (),
               sentence_end_ids=tuple(sentence_ends) if m.contrast_scope else (),
               dtype=jnp.dtype(m.dtype))


def dropout_bytes(rate: float) -> int:
  """How many of a random byte's 256 values drop a unit at `rate`; a rate
  that rounds to none or all of them raises ValueError."""
  drop_bytes = round(rate * 256)
  if rate > 0 and drop_bytes in (0, 256):
    raise ValueError(f'{rate} rounds to {drop_bytes}/256 (dropout draws 8 '
                     'bits a unit); use 0 or a rate in [0.002, 0.998)')
  return drop_bytes


class Dropout(nn.Module):
  """Inverted dropout drawing 8 random bits a unit, not `nn.Dropout`'s 32
  (its draws were the step's largest non-matmul cost; review/MEASUREMENTS.md):
  the rate is rounded to k/256 (0.1 drops 26/256) and kept units scaled."""

  rate: float
  deterministic: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool | None = None
               ) -> jax.Array:
    """x: any shape; returns x's shape and dtype."""
    deterministic = self.deterministic if deterministic is None else deterministic
    drop_bytes = dropout_bytes(self.rate)
    if deterministic or drop_bytes == 0:
      return x
    words = jax.random.bits(self.make_rng('dropout'), (-(-x.size // 4),),
                            jnp.uint32)
    random_bytes = jax.lax.bitcast_convert_type(words, jnp.uint8).reshape(-1)
    keep = (random_bytes[:x.size] >= drop_bytes).reshape(x.shape)
    return jnp.where(keep, x / (1 - drop_bytes / 256), 0).astype(x.dtype)


class SelfAttention(nn.Module):
  """Multi-head self-attention with one fused QKV projection: a fused
  `[embed, 3 * embed]` matmul runs faster on CPU than three small ones, which
  is why this is not `nn.MultiHeadDotProductAttention`."""

  config: TransformerConfig

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, first_only: bool = False
               ) -> jax.Array:
    """x: `[batch * seq, embed]`; mask: `[batch, seq]` (True = real token).
    Returns `[batch * seq, embed]`, or with `first_only` the first position's
    output alone, `[batch, embed]`: every key is still attended to."""
    cfg = self.config
    (batch, seq), embed = mask.shape, x.shape[-1]
    head_dim = embed // cfg.num_heads
    qkv = nn.Dense(3 * embed, dtype=cfg.dtype, name='qkv')(x)
    # Split along the fused axis: its gradient is then one concatenate,
    # where indexing each of q, k, v gave three pads and their sum.
    query, key, value = (
        t.reshape(batch, seq, cfg.num_heads, head_dim)
        for t in jnp.split(qkv, 3, axis=-1))
    if first_only:
      query, seq = query[:, :1], 1
    # Scale the query, not the [q, k] scores: seq*head_dim work instead of seq^2.
    query = query * (head_dim**-0.5)
    scores = jnp.einsum('bqhd,bkhd->bhqk', query, key)
    # Padded keys get exactly zero probability: exp(finfo.min - max) underflows.
    big_negative = jnp.finfo(scores.dtype).min
    scores = jnp.where(mask[:, None, None, :], scores, big_negative)
    # Softmax in float32 even under bf16 compute, for stable normalisation.
    weights = jax.nn.softmax(scores.astype(jnp.float32), axis=-1)
    self.sow('intermediates', 'attention_weights', weights)
    weights = weights.astype(cfg.dtype)
    if cfg.attention_dropout_rate > 0:
      weights = Dropout(cfg.attention_dropout_rate)(
          weights, deterministic=cfg.deterministic)
    out = jnp.einsum('bhqk,bkhd->bqhd', weights, value)
    out = out.reshape(batch * seq, embed)
    return nn.Dense(embed, dtype=cfg.dtype, name='out')(out)


class EncoderBlock(nn.Module):
  """Pre-LayerNorm block: x + attn(LN(x)), then x + mlp(LN(x))."""

  config: TransformerConfig

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, first_only: bool = False
               ) -> jax.Array:
    """x: `[batch * seq, embed]`; mask: `[batch, seq]`. Returns x's shape, or
    with `first_only` the first position's output alone, `[batch, embed]`."""
    cfg = self.config
    dropout = Dropout(cfg.dropout_rate, deterministic=cfg.deterministic)
    y = nn.LayerNorm(dtype=cfg.dtype)(x)
    y = SelfAttention(cfg, name='attention')(y, mask, first_only)
    if first_only:
      x = x.reshape(*mask.shape, -1)[:, 0]
    x = x + (dropout(y) if cfg.dropout_rate > 0 else y)
    y = nn.LayerNorm(dtype=cfg.dtype)(x)
    y = nn.Dense(cfg.mlp_dim, dtype=cfg.dtype)(y)
    y = nn.gelu(y) if cfg.activation == 'gelu' else nn.relu(y)
    y = nn.Dense(x.shape[-1], dtype=cfg.dtype)(y)
    return x + (dropout(y) if cfg.dropout_rate > 0 else y)


def ngram_ids(tokens: jax.Array, order: int, buckets: int) -> jax.Array:
  """`[batch, seq]` hash buckets in `[0, buckets)` of the `order`-gram of
  `tokens` (`[batch, seq]`, the pieces before the start as padding) ending at
  each position: FNV-1a over the ids in uint32, salted by the order."""
  hashed = jnp.full(tokens.shape, 2166136261 ^ order, jnp.uint32)
  for offset in range(order - 1, -1, -1):
    shifted = jnp.pad(tokens, ((0, 0), (offset, 0)))[:, :tokens.shape[1]]
    hashed = (hashed ^ shifted.astype(jnp.uint32)) * jnp.uint32(16777619)
  return (hashed % jnp.uint32(buckets)).astype(jnp.int32)


class NgramEmbed(nn.Module):
  """Hashed n-gram embeddings, summed over orders 2..`ngram_max` and projected
  to the residual width: each position also sees the n-grams ending there, the
  features that make linear models strong on IMDB (NBSVM, fastText), after
  N-grammer (Roy et al. 2022); narrow, so its dense AdamW update is cheap."""

  config: TransformerConfig

  @nn.compact
  def __call__(self, tokens: jax.Array, negator: jax.Array | None = None,
               scope: jax.Array | None = None) -> jax.Array:
    """tokens, and the optional `negator` and `scope` masks: `[batch, seq]`.
    Returns `[batch, seq, embed]`. With the masks, an n-gram that holds a
    negator or ends in its scope is left out: a negated phrase enters only
    through its words, which the negation options act on."""
    cfg = self.config
    table = nn.Embed(cfg.ngram_buckets, cfg.ngram_dim, name='table',
                     embedding_init=nn.initializers.normal(0.02))
    summed = 0
    for order in range(2, cfg.ngram_max + 1):
      rows = table(ngram_ids(tokens, order, cfg.ngram_buckets))
      if negator is not None:  # Is a negator among the `order` pieces?
        held = sum(jnp.pad(negator, ((0, 0), (offset, 0)))[:, :tokens.shape[1]]
                   for offset in range(order)) > 0
        rows = jnp.where((held | scope)[..., None], 0, rows)
      summed = summed + rows
    return nn.Dense(cfg.embed_dim, use_bias=False, dtype=cfg.dtype,
                    name='project')(summed)


def negation_scope(tokens: jax.Array, negator_ids: tuple[int, ...],
                   clause_end_ids: tuple[int, ...], window: int = 0
                   ) -> jax.Array:
  """`[batch, seq]` bool: the pieces a negation governs, from the piece after
  a negator to the next clause end (Das and Chen 2001; Pang et al. 2002), or
  to at most `window` pieces after the negator (0 = no limit)."""
  position = jnp.arange(tokens.shape[1])
  last = lambda ids: jax.lax.cummax(jnp.where(
      jnp.isin(tokens, jnp.asarray(ids)), position, -1), axis=1)
  negator = last(negator_ids)
  scope = (negator > last(clause_end_ids)) & ~jnp.isin(
      tokens, jnp.asarray(negator_ids))
  return scope & (position - negator <= window) if window else scope


def contrast_scope(tokens: jax.Array, contrast_ids: tuple[int, ...],
                   sentence_end_ids: tuple[int, ...]) -> jax.Array:
  """`[batch, seq]` bool: the pieces of a sentence up to a contrast, itself
  included ("X, but Y": the "X, but"); the clause after it overrules X
  (Polanyi and Zaenen 2006)."""
  position = jnp.arange(tokens.shape[1])
  next_ = lambda ids: jax.lax.cummin(jnp.where(
      jnp.isin(tokens, jnp.asarray(ids)), position, tokens.shape[1]), axis=1,
      reverse=True)
  return next_(contrast_ids) < next_(sentence_end_ids)


class Encoder(nn.Module):
  """Token + position embeddings (+ hashed n-grams, + the negation and
  contrast options when on), then `num_layers` blocks."""

  config: TransformerConfig

  @nn.compact
  def __call__(self, tokens: jax.Array, embed_delta: jax.Array | None = None,
               first_only: bool = False) -> jax.Array:
    """tokens: `[batch, seq]` int ids. Returns `[batch, seq, embed]`, or with
    `first_only` `[batch, 1, embed]`: the last block then computes the first
    position alone, all a [CLS] head reads. `embed_delta` (`[batch, seq,
    embed]`, optional) is added to the token embeddings; its gradient times
    `word_embeddings` (sown before the negation and contrast options act) is
    gradient-times-input attribution."""
    cfg = self.config
    if tokens.shape[1] > cfg.max_len:
      raise ValueError(
          f'sequence length {tokens.shape[1]} exceeds max_len {cfg.max_len}')
    mask = tokens != PAD_ID
    x = nn.Embed(cfg.vocab_size, cfg.embed_dim, name='token_embed',
                 embedding_init=nn.initializers.normal(0.02))(tokens)
    if cfg.word_dropout_rate > 0 and not cfg.deterministic:
      # Word dropout: a dropped piece's embedding is zeroed, not rescaled, so
      # the encoder learns from reviews with words missing (Iyyer et al. 2015).
      keep = jax.random.bernoulli(self.make_rng('dropout'),
                                  1 - cfg.word_dropout_rate, tokens.shape)
      x = x * keep[..., None]
    if embed_delta is not None:
      x = x + embed_delta
    if cfg.negator_ids:
      negator = jnp.isin(tokens, jnp.asarray(cfg.negator_ids))
      scope = negation_scope(tokens, cfg.negator_ids, cfg.clause_end_ids,
                             cfg.negation_window)
    if cfg.ngram_buckets:
      skip = cfg.negator_ids and cfg.ngram_skip_negated
      x = x + NgramEmbed(cfg, name='ngram_embed')(
          tokens, *((negator, scope) if skip else ()))
    self.sow('intermediates', 'word_embeddings', x)
    # Options and blocks see `[batch * seq, embed]`: XLA:CPU sums a gradient
    # over one axis 25x faster than over two (review/MEASUREMENTS.md).
    shape, rows = x.shape, lambda flags: flags.reshape(-1, 1)  # As x's rows.
    x = x.reshape(-1, shape[-1])
    gain = lambda name, start: self.param(
        name, nn.initializers.constant(start), (cfg.embed_dim,)).astype(x.dtype)
    if cfg.negator_ids:
      if cfg.negation_flip:
        # One gain for every negated piece, whatever the word: what it learns
        # from "not good" in training applies to "not dreadful" at test time.
        x = jnp.where(rows(scope), x * gain('negation_gain', -1.0), x)
        if cfg.silence_negators:  # "not" acts only through what it reverses.
          x = jnp.where(rows(negator), 0, x)
      if cfg.negation_embed:
        x = x + rows(scope) * self.param(
            'negation_embed', nn.initializers.normal(0.02), (cfg.embed_dim,))
    if cfg.contrast_ids:
      before = contrast_scope(tokens, cfg.contrast_ids, cfg.sentence_end_ids)
      x = jnp.where(rows(before), x * gain('contrast_gain', 0.0), x)
    self.sow('intermediates', 'input_embeddings', x.reshape(shape))
    positions = self.param('position_embed', nn.initializers.normal(0.02),
                           (cfg.max_len, cfg.embed_dim))
    x = (x.reshape(shape) + positions[None, :tokens.shape[1]]).astype(cfg.dtype)
    if cfg.dropout_rate > 0:
      x = Dropout(cfg.dropout_rate)(x, deterministic=cfg.deterministic)
    x = x.reshape(-1, x.shape[-1])
    for i in range(cfg.num_layers):
      last = i == cfg.num_layers - 1
      x = EncoderBlock(cfg, name=f'layer_{i}')(x, mask, first_only and last)
    return nn.LayerNorm(dtype=cfg.dtype, name='final_norm')(x).reshape(
        tokens.shape[0], -1, x.shape[-1])


class Classifier(nn.Module):
  """Encoder + pooling + linear head. Returns float32 logits `[batch, classes]`."""

  config: TransformerConfig

  @nn.compact
  def __call__(self, tokens: jax.Array, embed_delta: jax.Array | None = None,
               every_position: bool = False) -> jax.Array:
    """tokens: `[batch, seq]` int ids, padded with `PAD_ID` at the end. A
    [CLS] head reads one position, so its last block computes that one alone,
    the same logits for several times less work; `every_position` computes
    them all, for callers that read every attention map."""
    cfg = self.config
    first_only = cfg.pooling == 'cls' and not every_position
    x = Encoder(cfg, name='encoder')(tokens, embed_delta, first_only)
    if cfg.pooling == 'cls':
      pooled = x[:, 0]
    elif cfg.pooling == 'mean':
      mask = (tokens != PAD_ID)[..., None].astype(x.dtype)
      # max(.., 1) keeps an all-padding row finite instead of 0/0.
      pooled = (x * mask).sum(1) / jnp.maximum(mask.sum(1), 1)
    else:
      raise ValueError(f"pooling must be 'mean' or 'cls', got {cfg.pooling!r}")
    self.sow('intermediates', 'pooled', pooled)
    logits = nn.Dense(cfg.num_classes, dtype=cfg.dtype, name='head')(pooled)
    return logits.astype(jnp.float32)


# A train step costs the forward pass plus a backward pass of twice its FLOPs
# (gradients w.r.t. activations and w.r.t. weights; Kaplan et al. 2020).
TRAIN_FLOPS_PER_FORWARD = 3


def forward_flops(config: TransformerConfig, seq_len: float) -> float:
  """Matmul FLOPs of one forward pass over one `[seq_len]` example: the
  project's one FLOP formula (MFU, sweep compute, scaling fit), 2 a
  multiply-add. Per token and layer: the QKV and output projections (4 d^2
  multiply-adds), the MLP (2 d m), and attention's scores and weighted values
  (2 seq d). Per token, the n-gram projection when on (ngram_dim d). Plus the
  head (d classes). A [CLS] head's last block projects QKV at every token but
  does the rest for one (`Classifier`). Lookups, LayerNorm, softmax and the
  activation are left out."""
  d, m = config.embed_dim, config.mlp_dim
  layer = 2 * (4 * d * d + 2 * d * m + 2 * seq_len * d)  # Per token.
  per_token = config.num_layers * layer
  if config.ngram_buckets:
    per_token += 2 * config.ngram_dim * d
  flops = seq_len * per_token + 2 * d * config.num_classes
  if config.pooling == 'cls':
    # The last block's positions after the first keep only their QKV.
    flops -= (seq_len - 1) * (layer - 2 * 3 * d * d)
  return flops


def count_params(params: Any) -> tuple[int, int]:
  """(total, non-embedding) parameter counts of a Classifier's params: the
  latter without the token, position and n-gram tables (Kaplan et al. 2020's
  N, which the scaling sweep uses)."""
  total = sum(x.size for x in jax.tree_util.tree_leaves(params))
  encoder = params['encoder']
  embedding = encoder['token_embed']['embedding'].size + encoder[
      'position_embed'].size
  if 'ngram_embed' in encoder:
    embedding += encoder['ngram_embed']['table']['embedding'].size
  if 'negation_embed' in encoder:
    embedding += encoder['negation_embed'].size
  return total, total - embedding
