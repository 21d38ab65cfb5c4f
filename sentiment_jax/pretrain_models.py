"""Pretraining heads on the classifier's `Encoder` (Flax linen).

`MaskedLM` predicts masked tokens (BERT's MLM), and `ReplacedTokenDetector`
trains the encoder to spot a generator's replacements (ELECTRA). The
`encoder` subtree of either's params loads into a `models.Classifier`
unchanged (self-pretraining).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from sentiment_jax.models import Encoder, TransformerConfig


class MaskedLM(nn.Module):
  """Encoder + a head predicting the tokens at chosen positions (BERT's MLM).

  Only the chosen positions reach the `[embed, vocab]` decoder: over every
  position it would cost several times the encoder itself. With
  `tied_decoder` the decoder is the token-embedding table itself (BERT's
  tying), so every prediction also trains the input embeddings that a
  fine-tune starts from.
  """

  config: TransformerConfig
  tied_decoder: bool = False

  @nn.compact
  def __call__(self, tokens: jax.Array, positions: jax.Array | None = None
               ) -> jax.Array:
    """tokens: `[batch, seq]`; positions: `[batch, predictions]` indices into
    seq (all positions when None). Returns float32 logits
    `[batch, predictions, vocab]`."""
    cfg = self.config
    encoder = Encoder(cfg, name='encoder')
    x = encoder(tokens)
    if positions is not None:
      x = jnp.take_along_axis(x, positions[..., None], axis=1)
    x = nn.Dense(cfg.embed_dim, dtype=cfg.dtype, name='transform')(x)
    x = nn.LayerNorm(dtype=cfg.dtype, name='transform_norm')(nn.gelu(x))
    if not self.tied_decoder:
      return nn.Dense(cfg.vocab_size, dtype=cfg.dtype, name='decoder')(
          x).astype(jnp.float32)
    table = encoder.variables['params']['token_embed']['embedding']
    bias = self.param('decoder_bias', nn.initializers.zeros, (cfg.vocab_size,))
    logits = jnp.einsum('bpe,ve->bpv', x, table.astype(cfg.dtype)) + bias
    return logits.astype(jnp.float32)


class ReplacedTokenDetector(nn.Module):
  """ELECTRA's pretraining (Clark et al. 2020): a small `MaskedLM` generator
  fills the masked positions with samples, and the encoder (the
  discriminator) tells, at every real position, whether a piece was replaced.

  Every position teaches the encoder, and the costly `[embed, vocab]` decoder
  is the generator's, at `generator_config.embed_dim`. The discriminator's
  encoder is the `encoder` subtree, like `MaskedLM`'s, so it loads into a
  `Classifier` unchanged. Samples are drawn from ids `first_piece` to
  `vocab_size - 2`, never padding, special tokens or [MASK] (the last id).
  """

  config: TransformerConfig
  generator_config: TransformerConfig
  first_piece: int

  @nn.compact
  def __call__(self, tokens: jax.Array, positions: jax.Array | None = None,
               targets: jax.Array | None = None,
               weights: jax.Array | None = None
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """tokens: `[batch, seq]` with masking applied; positions, targets,
    weights: `[batch, predictions]` as `mlm.mask_batch` makes them (None:
    nothing chosen, so nothing is replaced; what `init` is given).

    Returns the generator's float32 logits `[batch, predictions, vocab]`, the
    discriminator's float32 logits `[batch, seq]` (> 0: replaced), and
    whether each piece was replaced, `[batch, seq]` bool.
    """
    tokens = jnp.asarray(tokens)
    generator_logits = MaskedLM(self.generator_config, tied_decoder=True,
                                name='generator')(tokens, positions)
    corrupted = original = tokens
    if positions is not None:
      ids = jnp.arange(self.config.vocab_size)
      allowed = (ids >= self.first_piece) & (ids < self.config.vocab_size - 1)
      sampled = jax.random.categorical(
          self.make_rng('sample'),
          jnp.where(allowed, jax.lax.stop_gradient(generator_logits), -jnp.inf))
      rows, used = jnp.arange(tokens.shape[0])[:, None], weights > 0
      # Unused slots rewrite the piece already there.
      original = tokens.at[rows, positions].set(
          jnp.where(used, targets, tokens[rows, positions]))
      corrupted = original.at[rows, positions].set(
          jnp.where(used, sampled, original[rows, positions]))
    x = Encoder(self.config, name='encoder')(corrupted)
    logits = nn.Dense(1, dtype=self.config.dtype, name='detector')(x)[..., 0]
    return (generator_logits, logits.astype(jnp.float32),
            corrupted != original)
