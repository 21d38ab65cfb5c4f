"""Data in memory: cleaned texts, the subword tokenizer and padded batches.

`Split` holds texts and labels, `clean_text` is the one cleaning rule
(training, eval, predict and serving all apply it), and the rest turns texts
into length-sorted, padded batches of token ids. Where the splits come from
is `data_sources`; it is kept apart so that prediction, which needs only
this module, never imports TFDS or scikit-learn.
"""

from __future__ import annotations

import dataclasses
import html
import os
import re
from collections.abc import Iterator, Sequence

import numpy as np
import tokenizers

from sentiment_jax import counterfactuals
from sentiment_jax.errors import DataError
from sentiment_jax.models import PAD_ID

SPLIT_SEED = 42  # Fixed so every run and every source splits identically.
SPECIAL_TOKENS = ('[PAD]', '[UNK]', '[CLS]')  # [PAD] must get id PAD_ID == 0.
_TAG = re.compile(r'</?[a-zA-Z][^<>]{0,40}>')  # <br />, <i>, </a>: tags only.


@dataclasses.dataclass
class Split:
  """Texts with binary labels. `labels`: `[n]` int32 (0 = negative).

  `partner` (`[n]` int, or None): for a counterfactual pair, the index of
  the pair's other half, and -1 for a text in no pair.
  """

  texts: list[str]
  labels: np.ndarray
  partner: np.ndarray | None = None


def clean_text(text: str) -> str:
  """Replaces HTML artefacts (`<br />`, `&amp;`) and collapses white space."""
  return ' '.join(html.unescape(_TAG.sub(' ', text)).split())


def dedupe(texts: Sequence[str], labels: Sequence[int]) -> Split:
  """Keeps the first occurrence of each exact text."""
  seen: set[str] = set()
  keep_texts, keep_labels = [], []
  for text, label in zip(texts, labels):
    if text not in seen:
      seen.add(text)
      keep_texts.append(text)
      keep_labels.append(label)
  return Split(keep_texts, np.asarray(keep_labels, np.int32))


def subsample(split: Split, fraction: float) -> Split:
  """The first `fraction` of a seed-42 permutation: smaller subsets nest."""
  if not 0 < fraction <= 1:
    raise DataError(f'data.train_fraction must be in (0, 1], got {fraction}')
  order = np.random.default_rng(SPLIT_SEED).permutation(len(split.texts))
  keep = np.sort(order[:max(1, round(fraction * len(order)))])
  partner = None
  if split.partner is not None:  # Renumbered; a half alone loses its pair.
    new_index = np.full(len(split.texts) + 1, -1)  # [-1] maps -1 to -1.
    new_index[keep] = np.arange(len(keep))
    partner = new_index[split.partner[keep]]
  return Split([split.texts[i] for i in keep], split.labels[keep], partner)


# ----------------------------------------------------------------------------
# Tokenizer.


def _untrained_tokenizer() -> tokenizers.Tokenizer:
  """A lower-cased WordPiece pipeline (BERT's normalizer and pre-tokenizer)
  with no vocabulary yet."""
  tok = tokenizers.Tokenizer(tokenizers.models.WordPiece(unk_token='[UNK]'))
  tok.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=True)
  tok.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
  tok.decoder = tokenizers.decoders.WordPiece()
  return tok


def train_tokenizer(texts: Sequence[str], vocab_size: int
                    ) -> tokenizers.Tokenizer:
  """Trains a lower-cased WordPiece vocabulary on `texts` (the train split),
  the same one in every process."""
  Trainer = tokenizers.trainers.WordPieceTrainer
  # The trainer numbers each continuation piece ('##x') when it first meets
  # it, in hash-map order, and breaks ties between equally frequent merges by
  # those numbers, so on the same texts it learnt one of several vocabularies
  # (huggingface/tokenizers#1794; on base's split, two of six processes
  # differed). A first pass without merges finds the continuation pieces;
  # handing them to the real pass up front, sorted, fixes their numbers.
  first = _untrained_tokenizer()
  first.train_from_iterator(texts, trainer=Trainer(vocab_size=1,
                                                   show_progress=False))
  continuations = sorted(p for p in first.get_vocab() if p.startswith('##'))
  tok = _untrained_tokenizer()
  tok.train_from_iterator(texts, trainer=Trainer(
      vocab_size=vocab_size, show_progress=False,
      special_tokens=list(SPECIAL_TOKENS) + continuations))
  # Numbered canonically: special tokens first, then the pieces sorted. Only
  # the real special tokens are registered as such, so '##x' in a text is
  # split like any other word.
  pieces = sorted(set(tok.get_vocab()) - set(SPECIAL_TOKENS))
  vocab = {piece: i for i, piece in enumerate(list(SPECIAL_TOKENS) + pieces)}
  tok = _untrained_tokenizer()
  tok.model = tokenizers.models.WordPiece(vocab=vocab, unk_token='[UNK]')
  tok.add_special_tokens(list(SPECIAL_TOKENS))
  assert tok.token_to_id('[PAD]') == PAD_ID
  return tok


def load_tokenizer(path: str | os.PathLike,
                   fix: str = 'delete the workdir or retrain'
                   ) -> tokenizers.Tokenizer:
  """The tokenizer saved at `path`; DataError (ending in `fix`) if unreadable."""
  try:
    return tokenizers.Tokenizer.from_file(str(path))
  except Exception as e:  # tokenizers raises a bare Exception on bad JSON.
    raise DataError(f'{path}: cannot load the tokenizer ({e}); {fix}'
                    ) from None


@dataclasses.dataclass
class Encoded:
  """Token ids per text, truncated to max_len, with the untruncated lengths."""

  ids: list[np.ndarray]  # Each `[len <= max_len]` int32, [CLS] first.
  full_lengths: np.ndarray  # `[n]` tokens before truncation.

  @property
  def lengths(self) -> np.ndarray:
    return np.fromiter((len(x) for x in self.ids), np.int64, len(self.ids))

  @property
  def num_truncated(self) -> int:
    return int((self.full_lengths > self.lengths).sum())


# Pieces that open a negation's scope and pieces that close it. Our
# pre-tokenizer splits "didn't" into `didn ' t`, so the piece `t` opens one.
NEGATORS = counterfactuals.NEGATORS + ('t',)
CLAUSE_ENDS = ('.', ',', ';', ':', '!', '?', 'but', '(', ')')
# A contrast, and the pieces that end the sentence whose start it overrules.
CONTRASTS = ('but',)
SENTENCE_ENDS = ('.', '!', '?', ';')


def negation_ids(tok: tokenizers.Tokenizer) -> tuple[tuple[int, ...], ...]:
  """The ids of `NEGATORS`, `CLAUSE_ENDS`, `CONTRASTS` and `SENTENCE_ENDS`
  that are whole pieces of `tok`."""
  ids = lambda words: tuple(sorted(
      i for i in map(tok.token_to_id, words) if i is not None))
  return (ids(NEGATORS), ids(CLAUSE_ENDS), ids(CONTRASTS),
          ids(SENTENCE_ENDS))


def encode(tok: tokenizers.Tokenizer, texts: Sequence[str], max_len: int,
           truncation: str = 'head') -> Encoded:
  """Tokenises `texts` as `[CLS] pieces...` of at most `max_len` ids.

  `truncation='head'` keeps the first pieces; 'head_tail' keeps the first
  quarter and the last three quarters of the budget, since reviews tend to
  end with their verdict (Sun et al. 2019 found head+tail best for IMDB).
  """
  if truncation not in ('head', 'head_tail'):
    raise DataError(f"data.truncation must be 'head' or 'head_tail', got "
                    f'{truncation!r}')
  cls_id = tok.token_to_id('[CLS]')
  budget = max_len - 1
  head = budget // 4 if truncation == 'head_tail' else budget
  ids, full = [], []
  for enc in tok.encode_batch(list(texts), add_special_tokens=False):
    pieces = enc.ids
    if len(pieces) > budget:
      pieces = pieces[:head] + pieces[len(pieces) - (budget - head):]
    full.append(len(enc.ids) + 1)
    ids.append(np.asarray([cls_id] + pieces, np.int32))
  return Encoded(ids, np.asarray(full, np.int64))


# ----------------------------------------------------------------------------
# Batching.


def pad_batch(ids: Sequence[np.ndarray], pad_multiple: int, max_len: int
              ) -> np.ndarray:
  """Right-pads to the longest row rounded up to `pad_multiple`: `[n, seq]`.

  Rounding bounds the number of distinct shapes, and so of jit compilations.
  """
  longest = max(len(x) for x in ids)
  seq = min(-(-longest // pad_multiple) * pad_multiple, max_len)
  out = np.full((len(ids), seq), PAD_ID, np.int32)
  for row, x in zip(out, ids):
    row[:len(x)] = x
  return out


def num_train_batches(num_examples: int, batch_size: int) -> int:
  return num_examples // batch_size


def train_batches(encoded: Encoded, labels: np.ndarray, *, batch_size: int,
                  seed: int, epoch: int, pad_multiple: int, max_len: int,
                  chunk_batches: int, start: int = 0,
                  partner: np.ndarray | None = None) -> Iterator[dict]:
  """Yields the epoch's batches from index `start` on, deterministically.

  Shuffles with `(seed, epoch)`, sorts each chunk of `chunk_batches` batches
  by length so a batch holds similar lengths (little padding), then shuffles
  the batch order. The last partial batch is dropped. Each batch is
  `{'tokens': [batch, seq] int32, 'label': [batch] int32}`.

  With `partner` (`Split.partner`) a pair's halves are shuffled and sorted
  as one unit and stay side by side, and each batch gets `'partner'`
  (`[batch]` int32): the row of the other half, -1 if none is in the batch.
  """
  rng = np.random.default_rng([seed, epoch])
  lengths = encoded.lengths
  if partner is None:
    units, mates = rng.permutation(len(lengths)), None
    unit_lengths = lengths[units]
  else:  # A unit is a single text or a pair's first half.
    first = np.flatnonzero((partner < 0) | (np.arange(len(partner)) < partner))
    units = first[rng.permutation(len(first))]
    mates = partner[units]
    unit_lengths = np.maximum(lengths[units],
                              np.where(mates >= 0, lengths[mates], 0))
  chunk = batch_size * chunk_batches
  rows = []
  for begin in range(0, len(units), chunk):
    for u in begin + np.argsort(unit_lengths[begin:begin + chunk],
                                kind='stable'):
      rows.append(units[u])
      if mates is not None and mates[u] >= 0:
        rows.append(mates[u])
  rows = np.asarray(rows, np.int64)
  batches = [rows[i:i + batch_size]
             for i in range(0, len(rows) - batch_size + 1, batch_size)]
  rng.shuffle(batches)
  for index in batches[start:]:
    batch = {'tokens': pad_batch([encoded.ids[i] for i in index], pad_multiple,
                                 max_len),
             'label': labels[index]}
    if partner is not None:
      row_of = dict(zip(index.tolist(), range(len(index))))
      batch['partner'] = np.asarray(
          [row_of.get(p, -1) for p in partner[index].tolist()], np.int32)
    yield batch


def eval_batches(encoded: Encoded, labels: np.ndarray, *, batch_size: int,
                 pad_multiple: int, max_len: int) -> Iterator[dict]:
  """Yields every example once, sorted by length, in full-size batches.

  Adds `'index'` (`[batch]` positions into the split) and `'weight'`
  (`[batch]`, 0 for filler rows that pad the last batch to `batch_size`).
  """
  order = np.argsort(encoded.lengths, kind='stable')
  for begin in range(0, len(order), batch_size):
    index = order[begin:begin + batch_size]
    fill = batch_size - len(index)
    rows = [encoded.ids[i] for i in index] + [encoded.ids[index[0]]] * fill
    yield {'tokens': pad_batch(rows, pad_multiple, max_len),
           'label': np.concatenate([labels[index], np.zeros(fill, np.int32)]),
           'weight': np.concatenate([np.ones(len(index), np.float32),
                                     np.zeros(fill, np.float32)]),
           'index': np.concatenate([index, np.full(fill, -1)])}
