"""Attribution maths: attention, rollout, gradient x input, occlusion, masking, faithfulness.

`explain(predictor, texts)` returns one `Explanation` per text. These
definitions are written into every dump's meta.json:

* Pooled position. The head reads the mean of the real tokens' final states
  (`pooling='mean'`) or the `[CLS]` state (`'cls'`). The attention "from the
  pooled position" is therefore the mean over the real query rows, or row 0.
* Rollout (Abnar & Zuidema 2020). Per layer
  `Â = 0.5 * mean_heads(A) + 0.5 * I`, rows renormalised (the identity stands
  for the residual connection), and `rollout = Â_L ... Â_1`, later layers on
  the left, read at the pooled position.
* Words. A token starting with `##` continues the previous token's word, as
  in the WordPiece vocabulary, unless truncation (`data.truncation`) cut the
  pieces between them; `[CLS]` belongs to no word. Token scores are
  SUMMED into word scores: attention and gradient x input are shares of a total
  that a word's pieces split between them, so the sum keeps the word's mass.
* Gradient x input. For each token, the dot product of the gradient of
  `logit(pos) - logit(neg)` w.r.t. its input with that input (via
  `Classifier(embed_delta=...)`): the token embedding, plus with n-grams on
  the n-grams ending at that position, before the negation and contrast
  options act on it: their gains are inside the gradient, so a reversed word
  scores as the model reads it and a silenced one zero. The sign says which
  class the word pushes towards, independent of the prediction; position
  embeddings and the negation scope vector are left out as they are not a
  property of the word.
* Occlusion. `P(pos | text) - P(pos | text without the word)`: positive when the
  word pushes towards positive. The word's pieces are deleted from the token
  ids, which equals re-tokenising the text without it because WordPiece
  splits each pre-tokenised word on its own; a truncated text is not refilled
  from its dropped pieces.
* Masking. The same difference with the word's pieces replaced by padding:
  the word leaves every attention and the mean pool, but unlike deletion no
  later word moves to another position. With learned position embeddings the
  shift alone can move P(pos) as much as the word does; a low
  rho(occlusion, masking) says deletion mostly measures that shift.
  Occlusion and masking variants run as padded batches.
* Faithfulness. Spearman's rho between the words' attention (last layer, mean
  over heads, at the pooled position) or rollout and the MAGNITUDE of each
  importance score (gradient x input, occlusion, masking): attention is
  non-negative and has no direction, so it can at best rank how much a word
  matters, not which way.
"""


from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from sentiment_jax import inference, input_pipeline, metrics, models

NOT_WORDS = ('[CLS]', '[PAD]')  # Tokens that belong to no word of the text.
IMPORTANCE = {'gradient': 'gradient_x_input', 'occlusion': 'occlusion',
              'masking': 'masking'}  # Short name -> word_scores key.
CORRELATIONS = tuple(
    [f'{attn}_vs_{imp}' for attn in ('attention', 'rollout')
     for imp in IMPORTANCE]
    + ['gradient_vs_occlusion', 'gradient_vs_masking',
       'occlusion_vs_masking'])


def rollout(weights: np.ndarray) -> np.ndarray:
  """Attention rollout `[seq, seq]` of weights `[layers, heads, seq, seq]`."""
  eye = np.eye(weights.shape[-1])
  result = eye
  for layer in weights:
    mixed = 0.5 * layer.mean(0) + 0.5 * eye
    mixed /= mixed.sum(-1, keepdims=True)
    result = mixed @ result
  return result


def pooled_attention(matrix: np.ndarray, pooling: str) -> np.ndarray:
  """The pooled position's row `[k]` of a `[q, k]` matrix over real tokens."""
  return matrix[0] if pooling == 'cls' else matrix.mean(0)


def word_index(tokens: Sequence[str], positions: Sequence[int] | None = None
               ) -> np.ndarray:
  """Word number of each token `[seq]`; -1 for `[CLS]`/`[PAD]`.

  A `##` piece continues the word before it if it directly follows it in the
  text: `positions` `[seq]` are the tokens' places among the text's pieces
  (default consecutive), so a word cut by truncation is not glued to another.
  """
  if positions is None:
    positions = range(len(tokens))
  index, word, previous = [], -1, None
  for token, position in zip(tokens, positions):
    if token in NOT_WORDS:
      index.append(-1)
      continue
    if not token.startswith('##') or word < 0 or position != previous + 1:
      word += 1
    index.append(word)
    previous = position
  return np.asarray(index, np.int64)


def kept_positions(pieces: Sequence[int], kept: Sequence[int]) -> np.ndarray:
  """Where the `kept` ids sit among a text's `pieces`: `[len(kept)]` indices.

  Every `data.truncation` keeps a prefix plus a suffix of the pieces ('head'
  an empty suffix), so the longest prefix that leaves a matching suffix wins.
  """
  pieces, kept = list(pieces), list(kept)
  prefix = 0
  while prefix < len(kept) and kept[prefix] == pieces[prefix]:
    prefix += 1
  for head in range(prefix, -1, -1):
    tail_start = len(pieces) - (len(kept) - head)
    if kept[head:] == pieces[tail_start:]:
      return np.concatenate([np.arange(head),
                             np.arange(tail_start, len(pieces))]).astype(int)
  raise ValueError('the model input is not a prefix plus a suffix of the '
                   "text's pieces; explain.attribution.kept_positions needs updating for "
                   'the current data.truncation')


def merge_to_words(scores: np.ndarray, index: np.ndarray) -> np.ndarray:
  """Sums token scores `[seq]` into word scores `[words]` (see word_index)."""
  real = index >= 0
  return np.bincount(index[real], weights=scores[real],
                     minlength=index.max(initial=-1) + 1)


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
  """Spearman's rho, or None where it is undefined (< 3 words, a constant)."""
  if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
    return None
  return float(stats.spearmanr(a, b).statistic)


def faithfulness(word_scores: dict[str, np.ndarray]) -> dict[str, float | None]:
  """Rank correlations, named as in CORRELATIONS, between per-word scores.

  Attention and rollout are used as they are; importance scores by magnitude.
  """
  scores = {'attention': word_scores['attention'],
            'rollout': word_scores['rollout']}
  scores.update({name: np.abs(word_scores[key])
                 for name, key in IMPORTANCE.items()})
  return {name: spearman(*(scores[part] for part in name.split('_vs_')))
          for name in CORRELATIONS}


def summarize(per_text: Sequence[dict[str, float | None]]) -> dict[str, dict]:
  """Mean, std, median and count of each correlation over texts defining it."""
  out = {}
  for name in CORRELATIONS:
    values = np.asarray([f[name] for f in per_text if f[name] is not None])
    out[name] = {'mean': float(values.mean()) if len(values) else None,
                 'std': float(values.std()) if len(values) else None,
                 'median': float(np.median(values)) if len(values) else None,
                 'count': int(len(values))}
  return out


@functools.partial(jax.jit, static_argnums=0)
def analyse(model: models.Classifier, params, tokens: jax.Array
            ) -> tuple[jax.Array, jax.Array]:
  """Attention and gradient x input for `tokens` `[batch, seq]` (padded).

  Returns weights `[layers, batch, heads, seq, seq]` (padded keys get exactly
  0) and gradient x input `[batch, seq]` of logit(pos) - logit(neg).
  """

  def margin(delta):
    logits, state = model.apply({'params': params}, tokens, delta,
                                every_position=True, mutable=['intermediates'])
    # Texts do not interact, so the gradient of the sum is per-text.
    return (logits[:, 1] - logits[:, 0]).sum(), state['intermediates']

  grad, intermediates = jax.grad(margin, has_aux=True)(
      jnp.zeros(tokens.shape + (model.config.embed_dim,), jnp.float32))
  layers = intermediates['encoder']
  weights = jnp.stack([layers[f'layer_{i}']['attention']['attention_weights'][0]
                       for i in range(model.config.num_layers)])
  # The input is the word at each position (token plus n-gram embeddings),
  # so an n-gram model's attributions keep its n-gram path; the negation
  # and contrast options act on it downstream, inside the gradient.
  inputs = layers['word_embeddings'][0]
  return weights, (grad * inputs).sum(-1)


@dataclasses.dataclass
class Explanation:
  """Everything dumped for one text; `n` real tokens, [CLS] first."""

  text: str
  tokens: list[str]  # `[n]`.
  weights: np.ndarray  # `[layers, heads, n, n]`, rows sum to 1.
  word_index: np.ndarray  # `[n]`, -1 for [CLS].
  word_spans: list[tuple[int, int]]  # Character span of each word in `text`.
  dropped_spans: list[tuple[int, int]]  # Character spans truncation dropped.
  p_positive: float
  predicted_label: int  # Under metrics.decide, from the same logits.
  p_without_word: np.ndarray  # `[words]` P(pos) with that word deleted.
  p_word_masked: np.ndarray  # `[words]` P(pos) with that word masked out.
  word_scores: dict[str, np.ndarray]  # Name -> `[words]`; see module docstring.
  full_num_tokens: int  # Before truncation.

  @property
  def words(self) -> list[str]:
    return [self.text[start:end] for start, end in self.word_spans]

  @property
  def truncated_tokens(self) -> int:
    return self.full_num_tokens - len(self.tokens)


def explain(predictor: inference.Predictor, texts: Sequence[str]
            ) -> list[Explanation]:
  """Attention, rollout, gradient x input, occlusion and masking per text."""
  d = predictor.config.data
  pooling = predictor.model.config.pooling
  encoded = predictor.encode(texts)
  pieces = predictor.tokenizer.encode_batch(list(texts),
                                            add_special_tokens=False)
  partial = []
  for ids, piece in zip(encoded.ids, pieces):
    n = len(ids)
    tokens = [predictor.tokenizer.id_to_token(int(i)) for i in ids]
    kept = kept_positions(piece.ids, ids[1:])
    index = word_index(tokens, np.concatenate([[-1], kept]))
    offsets = [(0, 0)] + [piece.offsets[k] for k in kept]  # [CLS]: no chars.
    spans = []
    for word in range(index.max(initial=-1) + 1):
      positions = np.flatnonzero(index == word)
      spans.append((offsets[positions[0]][0], offsets[positions[-1]][1]))
    dropped = np.setdiff1d(np.arange(len(piece.ids)), kept)
    runs = np.split(dropped, np.flatnonzero(np.diff(dropped) > 1) + 1)
    dropped_spans = [(piece.offsets[run[0]][0], piece.offsets[run[-1]][1])
                     for run in runs if len(run)]
    padded = input_pipeline.pad_batch([ids], d.pad_multiple, d.max_len)
    weights, gradient = analyse(predictor.model, predictor.params, padded)
    weights = np.asarray(weights)[:, 0, :, :n, :n]
    gradient = np.asarray(gradient)[0, :n]
    partial.append((ids, tokens, index, spans, dropped_spans, weights,
                    gradient))

  # Every text, then each word deleted, then each word masked: one pass.
  variants = []
  for ids, _, index, *_ in partial:
    words = range(index.max(initial=-1) + 1)
    variants.append(ids)
    variants += [np.delete(ids, np.flatnonzero(index == w)) for w in words]
    variants += [np.where(index == w, models.PAD_ID, ids) for w in words]
  lengths = np.asarray([len(v) for v in variants])
  many = len(variants) > d.eval_batch_size
  logits = predictor.logits(input_pipeline.Encoded(variants, lengths),
                            progress='occlusion and masking' if many else None)
  prob, labels = metrics.p_positive(logits), metrics.decide(logits)

  out, start = [], 0
  for text, full, (ids, tokens, index, spans, dropped_spans, weights,
                   gradient) in zip(texts, encoded.full_lengths, partial):
    num_words = len(spans)
    p_full, label = prob[start], int(labels[start])
    p_without = prob[start + 1:start + 1 + num_words]
    p_masked = prob[start + 1 + num_words:start + 1 + 2 * num_words]
    start += 1 + 2 * num_words
    word_scores = {
        'attention': merge_to_words(
            pooled_attention(weights[-1].mean(0), pooling), index),
        'rollout': merge_to_words(pooled_attention(rollout(weights), pooling),
                                  index),
        'gradient_x_input': merge_to_words(gradient, index),
        'occlusion': p_full - p_without,
        'masking': p_full - p_masked,
    }
    out.append(Explanation(text, tokens, weights, index, spans, dropped_spans,
                           float(p_full), label, p_without, p_masked,
                           word_scores, int(full)))
  return out
