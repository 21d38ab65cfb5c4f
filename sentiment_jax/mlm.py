"""Self-pretraining data: the allowed corpus, the [MASK] token, and BERT-style
masking of token batches.

The corpus is the training split's texts plus, where the source has them,
the Rotten Tomatoes sentences; no validation or test text ever enters it.
"""

from __future__ import annotations

import math

import numpy as np
import tokenizers

from sentiment_jax import input_pipeline
from sentiment_jax.errors import DataError

MASK_TOKEN = '[MASK]'
# BERT's split of the chosen positions: 80% [MASK], 10% a random piece, 10%
# unchanged, so the encoder cannot rely on seeing [MASK] where it predicts.
MASK_SHARE, RANDOM_SHARE = 0.8, 0.1
_HELD_OUT_SEED = 7  # Fixes which corpus texts are held out, for every run.


def corpus(splits: dict[str, input_pipeline.Split], held_out: int
           ) -> tuple[list[str], list[str]]:
  """(pretraining texts, held-out texts) from the allowed splits.

  Train plus `rotten_tomatoes` when present, minus any text that also occurs
  in validation or test. A fixed permutation puts `held_out` texts aside for
  masked-token accuracy; the rest keep their order.
  """
  forbidden = set(splits['validation'].texts) | set(splits['test'].texts)
  allowed = [text for name in ('train', 'rotten_tomatoes') if name in splits
             for text in splits[name].texts if text not in forbidden]
  if held_out >= len(allowed):
    raise DataError(f'pretrain.held_out_texts={held_out} leaves nothing of '
                    f'the {len(allowed)} corpus texts to pretrain on; lower it')
  aside = set(np.random.default_rng(_HELD_OUT_SEED).permutation(
      len(allowed))[:held_out].tolist())
  return ([t for i, t in enumerate(allowed) if i not in aside],
          [t for i, t in enumerate(allowed) if i in aside])


def with_mask_token(tokenizer: tokenizers.Tokenizer) -> tokenizers.Tokenizer:
  """`tokenizer` with [MASK] appended as the last id (if it lacks one)."""
  if tokenizer.token_to_id(MASK_TOKEN) is None:
    tokenizer.add_special_tokens([MASK_TOKEN])
  if tokenizer.token_to_id(MASK_TOKEN) != tokenizer.get_vocab_size() - 1:
    raise DataError(f'the tokenizer has {MASK_TOKEN} at id '
                    f'{tokenizer.token_to_id(MASK_TOKEN)}, not last; pass a '
                    "tokenizer without it, or '' to train one")
  return tokenizer


def num_predictions(seq: int, mask_rate: float) -> int:
  """Prediction slots of a `[batch, seq]` batch: enough for any row, and a
  function of the padded length only, so shapes stay few (one per bucket)."""
  return max(1, math.ceil(mask_rate * (seq - 1)))


def mask_batch(tokens: np.ndarray, rng: np.random.Generator, *,
               mask_rate: float, vocab_size: int) -> dict[str, np.ndarray]:
  """Chooses `round(mask_rate * n)` of each row's n ordinary pieces (never
  padding, [CLS], [UNK] or [MASK]) and corrupts them.

  tokens: `[batch, seq]`, [MASK] being id `vocab_size - 1`. Returns the
  corrupted `tokens` `[batch, seq]`, and `positions`, `targets` (the original
  ids) and `weights` (1 for a used slot, 0 for an empty one), each
  `[batch, predictions]`.
  """
  mask_id = vocab_size - 1
  first_piece = len(input_pipeline.SPECIAL_TOKENS)
  batch, seq = tokens.shape
  slots = num_predictions(seq, mask_rate)
  out = tokens.copy()
  positions = np.zeros((batch, slots), np.int32)
  targets = np.zeros((batch, slots), np.int32)
  weights = np.zeros((batch, slots), np.float32)
  for row in range(batch):
    candidates = np.flatnonzero((tokens[row] >= first_piece)
                                & (tokens[row] != mask_id))
    count = min(slots, round(mask_rate * len(candidates)))
    if len(candidates) and not count:
      count = 1  # Every text with a piece teaches something.
    chosen = np.sort(rng.choice(candidates, count, replace=False))
    positions[row, :count] = chosen
    targets[row, :count] = tokens[row, chosen]
    weights[row, :count] = 1
    roll = rng.random(count)
    out[row, chosen[roll < MASK_SHARE]] = mask_id
    random = chosen[(roll >= MASK_SHARE) & (roll < MASK_SHARE + RANDOM_SHARE)]
    out[row, random] = rng.integers(first_piece, mask_id, len(random))
  return {'tokens': out, 'positions': positions, 'targets': targets,
          'weights': weights}
