"""Attention dumps: heatmaps, rollout, an offline page and a faithfulness check.

`--attention_dump=DIR` with `--mode=predict` or `--mode=eval` writes, per text,
`DIR/NNN/` holding `attention.npz`, `meta.json`, `heads.png`, `pooled.png`,
`rollout.png` and a self-contained `index.html`, plus `DIR/index.html` and
`DIR/summary.json` over all texts. Definitions used throughout:

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
  `logit(pos) - logit(neg)` w.r.t. its token embedding with that embedding
  (via `Classifier(embed_delta=...)`). The sign says which class the word pushes
  towards, independent of the prediction; position embeddings are left out as
  they are not a property of the word.
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

`--attention_layers` and `--attention_heads` select what the figures draw; the
arrays, rollout and faithfulness numbers always use every layer and head.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import html
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import tqdm
from scipy import stats

from sentiment_jax import inference, input_pipeline, models
from sentiment_jax import workdir as workdir_lib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

InputError = inference.InputError

MAX_LABELLED_TOKENS = 40  # Above this many tokens, figures show positions only.
NOT_WORDS = ('[CLS]', '[PAD]')  # Tokens that belong to no word of the text.
IMPORTANCE = {'gradient': 'gradient_x_input', 'occlusion': 'occlusion',
              'masking': 'masking'}  # Short name -> word_scores key.
CORRELATIONS = tuple(
    [f'{attn}_vs_{imp}' for attn in ('attention', 'rollout')
     for imp in IMPORTANCE]
    + ['gradient_vs_occlusion', 'gradient_vs_masking',
       'occlusion_vs_masking'])
_REFERENCE = (
    'Abnar &amp; Zuidema (2020, "Quantifying Attention Flow in Transformers", '
    'arXiv:2005.00928, Table 3) report Spearman correlations of only 0.08-0.13 '
    '(std about 0.2) between raw attention or rollout and input-gradient '
    'importance for DistilBERT fine-tuned on SST-2.')
_EXPLANATION = (
    "Spearman's rho compares two rankings of the review's words: 1 means the "
    'same order, 0 no relation, -1 the reverse. Attention (last layer, mean '
    'over heads, from the pooled position) and attention rollout are each '
    'compared with three measures of how much a word actually moves this '
    "prediction: gradient x input (the first-order effect of the word's "
    'embedding on logit(positive) - logit(negative)), occlusion (the change in '
    'P(positive) when the word is deleted) and masking (the same with the word '
    'masked out like padding, so no other word changes position). Importance '
    'is taken as magnitude, because attention has no sign. A rho near 0 means '
    'the highlighted words are not the words that drive the prediction. '
    + _REFERENCE + ' Attention shows where information is mixed, not why the '
    'model decided: treat highly attended words as hypotheses and check them '
    'with masking or occlusion. The importance measures are approximations too '
    '(a local linear view, and inputs the model never saw); their agreement '
    'with each other shows how much of a ranking there is to match. Deletion '
    'also shifts every later word by one position: a low rho(occlusion, '
    'masking) means occlusion mostly measures that shift, and masking is the '
    'better reference. A single text with few words gives a very noisy rho; '
    'read the summary over many texts.')


@dataclasses.dataclass(frozen=True)
class DumpRequest:
  """What `--attention_dump` asked for, before it is checked against a model."""

  directory: Path
  layers: Sequence[str] | None = None  # --attention_layers values; None = all.
  heads: Sequence[str] | None = None  # --attention_heads values; None = all.
  num_examples: int = 20  # --attention_examples, for --mode=eval.

  def check(self, config: models.TransformerConfig
            ) -> tuple[list[int], list[int]]:
    """Returns the selected (layers, heads); checks the directory is writable.

    Raises InputError naming the flag, so a bad request fails before any work.
    """
    layers = _parse_indices(self.layers, config.num_layers, 'attention_layers',
                            'layer')
    heads = _parse_indices(self.heads, config.num_heads, 'attention_heads',
                           'head')
    if self.num_examples <= 0:
      raise InputError(f'--attention_examples={self.num_examples} must be '
                       'positive')
    try:
      self.directory.mkdir(parents=True, exist_ok=True)
      probe = self.directory / '.write_test'
      probe.write_text('')
      probe.unlink()
    except OSError as e:
      raise InputError(f'--attention_dump={self.directory}: cannot write there '
                       f'({e.strerror or e}); pass a writable directory'
                       ) from None
    return layers, heads


def _parse_indices(values: Sequence[str] | None, count: int, flag: str,
                   noun: str) -> list[int]:
  if not values:
    return list(range(count))
  try:
    indices = [int(v) for v in values]
  except ValueError:
    raise InputError(f'--{flag}={",".join(values)}: expected comma-separated '
                     f'{noun} numbers, e.g. --{flag}=0,1') from None
  for index in indices:
    if not 0 <= index < count:
      raise InputError(f'--{flag}: {noun} {index} does not exist; the model '
                       f'has {count} {noun}s, numbered 0-{count - 1}')
  return list(dict.fromkeys(indices))


# ----------------------------------------------------------------------------
# Scores.


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
                   "text's pieces; attention.kept_positions needs updating for "
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
  embedding = params['encoder']['token_embed']['embedding'][tokens]

  def margin(delta):
    logits, state = model.apply({'params': params}, tokens, delta,
                                mutable=['intermediates'])
    # Texts do not interact, so the gradient of the sum is per-text.
    return (logits[:, 1] - logits[:, 0]).sum(), state['intermediates']

  grad, intermediates = jax.grad(margin, has_aux=True)(
      jnp.zeros_like(embedding))
  layers = intermediates['encoder']
  weights = jnp.stack([layers[f'layer_{i}']['attention']['attention_weights'][0]
                       for i in range(model.config.num_layers)])
  return weights, (grad * embedding).sum(-1)


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
  prob = inference.p_positive(predictor.logits(
      input_pipeline.Encoded(variants, lengths),
      progress='occlusion and masking' if many else None))

  out, start = [], 0
  for text, full, (ids, tokens, index, spans, dropped_spans, weights,
                   gradient) in zip(texts, encoded.full_lengths, partial):
    num_words = len(spans)
    p_full = prob[start]
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
                           float(p_full), p_without, p_masked, word_scores,
                           int(full)))
  return out


# ----------------------------------------------------------------------------
# Figures.


def _label_tokens(ax, tokens: Sequence[str], axes: str) -> None:
  """Token labels on the given axes ('x', 'y', 'xy') when they fit."""
  if len(tokens) > MAX_LABELLED_TOKENS:
    if 'x' in axes:
      ax.set_xlabel('token position')
    if 'y' in axes:
      ax.set_ylabel('token position')
    return
  positions = range(len(tokens))
  if 'x' in axes:
    ax.set_xticks(positions, tokens, rotation=90, fontsize=7)
  if 'y' in axes:
    ax.set_yticks(positions, tokens, fontsize=7)


def _figure_width(num_tokens: int) -> float:
  if num_tokens > MAX_LABELLED_TOKENS:
    return 12.0
  return max(6.0, 0.22 * num_tokens + 2)


def plot_heads(weights: np.ndarray, tokens: Sequence[str], layers: list[int],
               heads: list[int], path: Path) -> None:
  """Layers x heads grid of `[query, key]` heatmaps (bertviz's model view).

  Each panel's colours run from 0 to its 99th percentile: on long inputs a few
  peaks would otherwise leave the rest of the map white.
  """
  labelled = len(tokens) <= MAX_LABELLED_TOKENS
  cell = max(3.0, 0.12 * len(tokens) + 1) if labelled else 4.0
  cell = min(cell, 40 / max(len(layers), len(heads)))  # Bounded image size.
  fig, axes = plt.subplots(len(layers), len(heads), squeeze=False,
                           figsize=(cell * len(heads), cell * len(layers)),
                           layout='constrained')
  for row, layer in zip(axes, layers):
    for ax, head in zip(row, heads):
      panel = weights[layer, head]
      ax.imshow(panel, cmap='Blues', vmin=0, vmax=np.quantile(panel, 0.99),
                interpolation='nearest')
      ax.set_title(f'layer {layer}, head {head}', fontsize=9)
      _label_tokens(ax, tokens, 'xy')
  fig.suptitle('Attention per head\nrows (query) attend to columns (key); '
               'colours per panel, 0 to its 99th percentile', fontsize=10)
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_pooled(weights: np.ndarray, tokens: Sequence[str], layers: list[int],
                heads: list[int], pooling: str, path: Path) -> None:
  """Attention from the pooled position over the tokens, one row per layer."""
  rows = np.stack([pooled_attention(weights[layer, heads].mean(0), pooling)
                   for layer in layers])
  fig, ax = plt.subplots(figsize=(_figure_width(len(tokens)),
                                  1.6 + 0.4 * len(layers)),
                         layout='constrained')
  image = ax.imshow(rows, aspect='auto', cmap='Oranges', vmin=0,
                    interpolation='nearest')
  ax.set_yticks(range(len(layers)), [f'layer {layer}' for layer in layers])
  _label_tokens(ax, tokens, 'x')
  fig.colorbar(image, ax=ax, fraction=0.03)
  where = ('row 0, [CLS]' if pooling == 'cls'
           else 'mean over the query rows of the real tokens')
  ax.set_title(f'Attention from the pooled position ({where})\n'
               f'mean over heads {",".join(map(str, heads))}', fontsize=10)
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_rollout(scores: np.ndarray, tokens: Sequence[str], path: Path) -> None:
  """Bar chart of the rollout `[n]` at the pooled position.

  Too many tokens to label all: the ten highest bars are labelled instead.
  """
  fig, ax = plt.subplots(figsize=(_figure_width(len(tokens)), 3.2),
                         layout='constrained')
  ax.bar(range(len(tokens)), scores, color='tab:orange', width=0.8)
  ax.set_xlim(-0.5, len(tokens) - 0.5)
  ax.set_ylim(0, scores.max() * (1.35 if len(tokens) > MAX_LABELLED_TOKENS
                                 else 1.05))
  ax.set_ylabel('share of the pooled state')
  _label_tokens(ax, tokens, 'x')
  if len(tokens) > MAX_LABELLED_TOKENS:
    for position in np.argsort(-scores, kind='stable')[:10]:
      ax.annotate(tokens[position], (position, scores[position]),
                  rotation=90, fontsize=7, ha='center', va='bottom',
                  xytext=(0, 2), textcoords='offset points')
  ax.set_title('Attention rollout (Abnar & Zuidema 2020) at the pooled '
               'position\nall layers and heads', fontsize=10)
  fig.savefig(path, dpi=100)
  plt.close(fig)


# ----------------------------------------------------------------------------
# Pages.

_CSS = """
body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
.text{font-size:1.05em;border:1px solid #ddd;padding:.8em;border-radius:4px}
.text span{border-radius:3px;padding:0 1px}
.dropped{color:#999}
.notice{background:#fff3cd;border:1px solid #e0c36a;padding:.5em .8em}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;display:block;margin:.5em 0 1.5em}
.wrong{color:#b71c1c}.right{color:#1b5e20}
"""


def _escape(text: str) -> str:
  """HTML-escapes, and breaks `://` so no text in a page reads as a URL."""
  return html.escape(text).replace('://', ':&#47;&#47;')


def _page(title: str, body: str) -> str:
  return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
          f'<title>{_escape(title)}</title><style>{_CSS}</style></head>'
          f'<body>\n{body}\n</body></html>\n')


def _format(value: float | None, digits: int = 3) -> str:
  return 'n/a' if value is None else f'{value:.{digits}f}'


def _highlight(ex: Explanation, scores: np.ndarray, signed: bool) -> str:
  """The text with each word's background showing its score.

  Unsigned scores shade orange; signed ones green (towards positive) or red.
  Text that truncation dropped is greyed out.
  """
  peak = np.abs(scores).max(initial=0) or 1.0
  segments = sorted([(start, stop, word) for word, (start, stop)
                     in enumerate(ex.word_spans)]
                    + [(start, stop, None) for start, stop in ex.dropped_spans])
  parts, end = [], 0
  for start, stop, word in segments:
    parts.append(_escape(ex.text[end:start]))
    chunk = _escape(ex.text[start:stop])
    end = stop
    if word is None:
      parts.append(f'<span class="dropped">{chunk}</span>')
      continue
    alpha = 0.85 * abs(scores[word]) / peak
    colour = ('255,140,0' if not signed else
              '46,125,50' if scores[word] > 0 else '198,40,40')
    tip = ' | '.join(f'{name} {ex.word_scores[name][word]:+.4f}'
                     for name in ex.word_scores)
    parts.append(f'<span style="background:rgba({colour},{alpha:.2f})" '
                 f'title="{_escape(tip)}">{chunk}</span>')
  parts.append(_escape(ex.text[end:]))
  return f'<div class="text">{"".join(parts)}</div>'


def _image(path: Path, alt: str) -> str:
  data = base64.b64encode(path.read_bytes()).decode('ascii')
  return f'<img alt="{_escape(alt)}" src="data:image/png;base64,{data}">'


def _correlation_table(rows: dict[str, float | None]) -> str:
  cells = ''.join(f'<tr><td>{name.replace("_vs_", " vs ")}</td>'
                  f'<td class="num">{_format(value)}</td></tr>'
                  for name, value in rows.items())
  return f'<table><tr><th>Spearman rho</th><th>value</th></tr>{cells}</table>'


def _outcome(meta: dict) -> str:
  """'predicted negative (P(positive) = 0.12); label positive: wrong'."""
  text = (f'predicted <b>{meta["prediction"]}</b> '
          f'(P(positive) = {meta["p_positive"]:.3f})')
  if meta['label'] is not None:
    right = meta['correct']
    text += (f'; label {meta["label_name"]}: <span class="'
             f'{"right" if right else "wrong"}">'
             f'{"correct" if right else "wrong"}</span>')
  return text


def _text_page(ex: Explanation, meta: dict, folder: Path) -> str:
  truncation = meta['truncation']
  notice = ''
  if truncation['truncated']:
    notice = f'<p class="notice">{_escape(truncation["notice"])}</p>'
  order = {name: np.argsort(-np.abs(ex.word_scores[name]), kind='stable')[:10]
           for name in ex.word_scores}
  words = ex.words
  top_rows = ''.join(
      '<tr>' + ''.join(
          f'<td>{_escape(words[order[name][rank]])} '
          f'({ex.word_scores[name][order[name][rank]]:+.3f})</td>'
          for name in ex.word_scores) + '</tr>'
      for rank in range(min(10, len(words))))
  header = ''.join(f'<th>{name.replace("_", " ")}</th>'
                   for name in ex.word_scores)
  single_layer = ('<p>With a single layer, rollout is raw attention plus a '
                  'constant identity term, so the two rank words almost alike.'
                  '</p>' if meta['model']['num_layers'] == 1 else '')
  details = ''.join(
      f'<details><summary>Highlighted by {label}</summary>'
      f'{_highlight(ex, ex.word_scores[name], signed)}</details>'
      for name, label, signed in (
          ('attention', 'raw last-layer attention', False),
          ('gradient_x_input', 'gradient x input (green: towards positive, '
           'red: towards negative)', True),
          ('occlusion', 'occlusion (green: deleting the word lowers '
           'P(positive))', True),
          ('masking', 'masking (green: masking the word lowers '
           'P(positive))', True)))
  body = f"""
<p><a href="../index.html">all dumped texts</a></p>
<h1>Text {_escape(folder.name)}</h1>
<p>{_outcome(meta)}. Checkpoint step {meta['checkpoint_step']}.</p>
{notice}
<h2>Words highlighted by attention rollout</h2>
<p>Darker = larger share of the pooled state (rollout summed over each word's
pieces; [CLS] left out). Hover a word for all its scores.</p>
{_highlight(ex, ex.word_scores['rollout'], signed=False)}
{details}
<h2>How far can this attention be trusted?</h2>
{_correlation_table(meta['faithfulness'])}
<p>{_EXPLANATION}</p>
{single_layer}
<h2>Top words by each score</h2>
<table><tr>{header}</tr>{top_rows}</table>
<h2>Figures</h2>
{_image(folder / 'rollout.png', 'attention rollout')}
{_image(folder / 'pooled.png', 'attention from the pooled position')}
{_image(folder / 'heads.png', 'attention per layer and head')}
<p>Raw arrays: <a href="attention.npz">attention.npz</a>, all numbers:
<a href="meta.json">meta.json</a>.</p>
"""
  return _page(f'Attention: text {folder.name}', body)


def _index_page(entries: list[dict], summary: dict, context: dict) -> str:
  rows = []
  for meta in entries:
    f = meta['faithfulness']
    label = meta['label_name'] or '-'
    correct = '-' if meta['correct'] is None else (
        '<span class="right">yes</span>' if meta['correct']
        else '<span class="wrong">no</span>')
    excerpt = meta['text'][:90] + ('...' if len(meta['text']) > 90 else '')
    rows.append(
        f'<tr><td><a href="{meta["folder"]}/index.html">{meta["folder"]}</a>'
        f'</td><td>{_escape(excerpt)}</td><td>{meta["prediction"]}</td>'
        f'<td class="num">{meta["p_positive"]:.3f}</td><td>{label}</td>'
        f'<td>{correct}</td><td>{(meta["group"] or "-").replace("_", " ")}'
        f'</td><td class="num">{_format(f["rollout_vs_gradient"], 2)}</td>'
        f'<td class="num">{_format(f["rollout_vs_occlusion"], 2)}</td>'
        f'<td class="num">{_format(f["rollout_vs_masking"], 2)}</td></tr>')
  summary_rows = ''.join(
      f'<tr><td>{name.replace("_vs_", " vs ")}</td>'
      + ''.join(f'<td class="num">{_format(s[k])}</td>'
                for k in ('mean', 'std', 'median'))
      + f'<td class="num">{s["count"]}</td></tr>'
      for name, s in summary.items())
  described = ', '.join(f'{k.replace("_", " ")}: {_escape(str(v))}'
                        for k, v in context.items())
  body = f"""
<h1>Attention dumps</h1>
<p>{len(entries)} texts{'; ' + described if described else ''}.</p>
<table><tr><th>#</th><th>text</th><th>prediction</th><th>P(positive)</th>
<th>label</th><th>correct</th><th>group</th><th>rho rollout vs gradient</th>
<th>rho rollout vs occlusion</th><th>rho rollout vs masking</th></tr>
{''.join(rows)}</table>
<h2>Faithfulness over these texts</h2>
<table><tr><th>Spearman rho</th><th>mean</th><th>std</th><th>median</th>
<th>texts</th></tr>{summary_rows}</table>
<p>{_EXPLANATION}</p>
"""
  return _page('Attention dumps', body)


# ----------------------------------------------------------------------------
# Writing.


def _model_summary(predictor: inference.Predictor) -> dict:
  m = predictor.model.config
  return {'num_layers': m.num_layers, 'num_heads': m.num_heads,
          'embed_dim': m.embed_dim, 'mlp_dim': m.mlp_dim,
          'pooling': m.pooling, 'max_len': m.max_len,
          'vocab_size': m.vocab_size}


def _write_text(ex: Explanation, folder: Path, predictor: inference.Predictor,
                layers: list[int], heads: list[int], label: int | None,
                group: str | None) -> dict:
  """Writes one text's files into `folder`; returns its meta.json content."""
  folder.mkdir(parents=True, exist_ok=True)
  pooling = predictor.model.config.pooling
  rollout_matrix = rollout(ex.weights)
  np.savez_compressed(folder / 'attention.npz',
                      weights=ex.weights.astype(np.float32),
                      tokens=np.asarray(ex.tokens), word_index=ex.word_index,
                      rollout=rollout_matrix.astype(np.float32))
  plot_heads(ex.weights, ex.tokens, layers, heads, folder / 'heads.png')
  plot_pooled(ex.weights, ex.tokens, layers, heads, pooling,
              folder / 'pooled.png')
  plot_rollout(pooled_attention(rollout_matrix, pooling), ex.tokens,
               folder / 'rollout.png')
  prediction = 'positive' if ex.p_positive >= 0.5 else 'negative'
  correct = None if label is None else (ex.p_positive >= 0.5) == bool(label)
  strategy = predictor.config.data.get('truncation', 'head')
  meta = {
      'folder': folder.name,
      'text': ex.text,
      'tokens': ex.tokens,
      'words': ex.words,
      'label': label,
      'label_name': None if label is None else ('negative', 'positive')[label],
      'prediction': prediction,
      'p_positive': ex.p_positive,
      'correct': correct,
      'group': group,
      'model': _model_summary(predictor),
      'checkpoint_step': predictor.step,
      'pooled_position': ('row 0 ([CLS])' if pooling == 'cls' else
                          'mean over the query rows of the real tokens'),
      'figures': {'layers': layers, 'heads': heads},
      'truncation': {'truncated': ex.truncated_tokens > 0,
                     'num_tokens': len(ex.tokens),
                     'full_num_tokens': ex.full_num_tokens,
                     'dropped_tokens': ex.truncated_tokens,
                     'max_len': predictor.model.config.max_len,
                     'strategy': strategy,
                     'notice': (
                         f'This text has {ex.full_num_tokens} tokens; the '
                         f'model reads at most {len(ex.tokens)}, so '
                         f'{ex.truncated_tokens} were dropped '
                         f'(data.truncation={strategy}; greyed out on the '
                         'page) and are not analysed.'
                         if ex.truncated_tokens else None)},
      'word_scores': {k: v.tolist() for k, v in ex.word_scores.items()},
      'p_positive_without_word': ex.p_without_word.tolist(),
      'p_positive_word_masked': ex.p_word_masked.tolist(),
      'faithfulness': faithfulness(ex.word_scores),
      'definitions': __doc__,
  }
  workdir_lib.write_atomic(folder / 'meta.json', json.dumps(meta, indent=2))
  workdir_lib.write_atomic(folder / 'index.html',
                           _text_page(ex, meta, folder))
  return meta


def dump_texts(predictor: inference.Predictor, texts: Sequence[str],
               request: DumpRequest, labels: Sequence[int] | None = None,
               groups: Sequence[str] | None = None,
               context: dict | None = None) -> dict:
  """Dumps each text into `request.directory/NNN/` and writes the index.

  `labels` (0/1) and `groups` (e.g. 'confident_mistake') are optional, one
  per text; `context` describes the selection on the index page. Returns the
  summary written to summary.json.
  """
  layers, heads = request.check(predictor.model.config)
  explanations = explain(predictor, texts)
  entries = []
  for i, ex in enumerate(tqdm.tqdm(explanations, desc='attention dumps',
                                   leave=False, disable=len(texts) < 5)):
    entries.append(_write_text(
        ex, request.directory / f'{i:03d}', predictor, layers, heads,
        None if labels is None else int(labels[i]),
        None if groups is None else groups[i]))
    if entries[-1]['truncation']['notice']:
      print(f'attention dump {i:03d}: {entries[-1]["truncation"]["notice"]}',
            file=sys.stderr)
  context = dict(context or {}, checkpoint_step=predictor.step)
  summary = {'num_texts': len(entries), **context,
             'faithfulness': summarize([e['faithfulness'] for e in entries]),
             'reference': html.unescape(_REFERENCE)}
  workdir_lib.write_atomic(request.directory / 'summary.json',
                           json.dumps(summary, indent=2))
  workdir_lib.write_atomic(request.directory / 'index.html',
                           _index_page(entries, summary['faithfulness'],
                                       context))
  print(f'attention dumps of {len(entries)} texts: '
        f'{request.directory / "index.html"}', file=sys.stderr)
  return summary


def select_examples(labels: np.ndarray, prob: np.ndarray, count: int
                    ) -> list[tuple[int, str]]:
  """(index, group) of the most confident correct and wrong predictions.

  Half of `count` (rounded down) are mistakes; when either kind runs short,
  the other fills in. Each group is ordered by confidence, highest first.
  """
  order = np.argsort(-np.abs(prob - 0.5), kind='stable')
  wrong = order[(prob[order] >= 0.5) != labels[order]]
  right = order[(prob[order] >= 0.5) == labels[order]]
  wrong = wrong[:max(count // 2, count - len(right))]
  right = right[:count - len(wrong)]
  return ([(int(i), 'confident_correct') for i in right]
          + [(int(i), 'confident_mistake') for i in wrong])


def dump_eval(predictor: inference.Predictor, data: input_pipeline.Split,
              prob: np.ndarray, split: str, request: DumpRequest) -> dict:
  """Dumps the most confident correct and wrong predictions on `split`."""
  chosen = select_examples(data.labels, prob, request.num_examples)
  groups = [group for _, group in chosen]
  return dump_texts(
      predictor, [data.texts[i] for i, _ in chosen], request,
      labels=[data.labels[i] for i, _ in chosen], groups=groups,
      context={'split': split,
               'confident_correct': groups.count('confident_correct'),
               'confident_mistakes': groups.count('confident_mistake')})
