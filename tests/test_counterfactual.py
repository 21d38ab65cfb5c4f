"""The vendored counterfactual pairs and `--eval_split=cad_dev|cad_test`."""

import json

import re

import numpy as np
import pytest

import analysis.behaviour
import analysis.lexicon
from configs import base
from helpers import REPO, check_ok, copy_run, run_cli
from sentiment_jax import counterfactuals, data_sources, errors, metrics

SHARED_CAD = REPO.parent / 'shared' / 'data' / 'cad'


def data_config(data_dir, **fields):
  """configs/base.py's data fields on the embedded data, with no pairs
  mixed in unless `fields` say so."""
  config = base.get_config().data
  config.update(tfds_data_dir=str(data_dir), counterfactual_copies=0)
  config.update(**fields)
  return config


# Pairs whose two texts are identical after `clean_text`: the data's README
# names 1 train and 1 test pair; in 2 more train pairs the texts differ only
# by a `<br /><br />` against a space.
@pytest.mark.parametrize('name, num_pairs, identical', [
    ('train', 1707, 3), ('dev', 245, 0), ('test', 488, 1)])
def test_pairs_have_their_counts_and_opposite_labels(name, num_pairs,
                                                     identical):
  pairs = data_sources.load_pairs(name)
  assert len(pairs.originals.texts) == len(pairs.revisions.texts) == num_pairs
  assert np.all(pairs.originals.labels != pairs.revisions.labels)
  same = sum(o == r for o, r in zip(pairs.originals.texts,
                                    pairs.revisions.texts))
  assert same == identical
  assert all(pairs.originals.texts) and '<br' not in ' '.join(
      pairs.originals.texts)


@pytest.mark.skipif(not SHARED_CAD.is_dir(), reason='no ../shared beside '
                    'the checkout (the vendored copy is tested above)')
def test_the_vendored_files_are_the_published_ones():
  for name in ('train_paired.tsv', 'dev_paired.tsv', 'test_paired.tsv',
               'LICENSE'):
    assert ((data_sources.CAD_DIR / name).read_bytes()
            == (SHARED_CAD / name).read_bytes()), name


def test_pair_accuracy_needs_both_halves_right():
  result = metrics.pair_accuracy([True, True, False, True],
                                        [True, False, True, False])
  assert result == {'num_pairs': 4, 'original_accuracy': 0.75,
                    'revised_accuracy': 0.5, 'pair_accuracy': 0.25}
  assert metrics.pair_accuracy([], [])['pair_accuracy'] is None


def test_an_unknown_split_is_refused():
  with pytest.raises(errors.DataError, match="'validation'"):
    data_sources.load_pairs('validation')


def test_eval_on_cad_test_reports_the_three_accuracies(trained_run, tmp_path):
  workdir = copy_run(trained_run, tmp_path / 'run')
  result = check_ok(run_cli(
      '--config=configs/tiny.py', '--config.eval.baseline=True',
      f'--workdir={workdir}', '--mode=eval', '--eval_split=cad_test'))
  report = json.loads((workdir / 'eval_cad_test.json').read_text())
  for model in ('transformer', 'baseline'):
    overall = report[model]['all']
    assert overall['num_pairs'] == 488
    for key in ('original_accuracy', 'revised_accuracy', 'pair_accuracy'):
      assert 0 <= overall[key] <= 1
    assert overall['pair_accuracy'] <= min(overall['original_accuracy'],
                                           overall['revised_accuracy'])
  # The tiny run trained on synthetic text: no CAD original is in it.
  assert report['num_originals_in_training_split'] == 0
  assert report['transformer']['unseen'] == report['transformer']['all']
  assert 'revised' in result.stdout and 'pair' in result.stdout


# ----------------------------------------------------------------------------
# Hygiene: what the counterfactual pairs may and may not add to training.


@pytest.fixture(scope='module')
def raw_and_mixed(tmp_path_factory):
  """The embedded splits before `_with_counterfactuals`, and after it with
  no copies and with two."""
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  raw = data_sources._load_embedded(data_dir)  # pylint: disable=protected-access
  config = lambda copies: data_config(data_dir, counterfactual_copies=copies)
  return (raw, data_sources.load_splits(config(0)),
          data_sources.load_splits(config(2)))


def test_evaluation_originals_leave_training_and_nothing_else_moves(
    raw_and_mixed):
  raw, clean, _ = raw_and_mixed
  held_out = {t for name in ('dev', 'test')
              for t in data_sources.load_pairs(name).originals.texts}
  assert not held_out & set(clean['train'].texts)
  removed = set(raw['train'].texts) - set(clean['train'].texts)
  assert removed == held_out & set(raw['train'].texts)
  assert len(removed) == 186 + 380  # Dev and test originals in our train.
  for name in ('validation', 'test', 'rotten_tomatoes'):
    assert clean[name].texts == raw[name].texts
    np.testing.assert_array_equal(clean[name].labels, raw[name].labels)


def test_counterfactual_train_pairs_join_without_evaluated_text(
    raw_and_mixed):
  _, clean, mixed = raw_and_mixed
  added = mixed['train'].texts[len(clean['train'].texts):]
  assert mixed['train'].texts[:len(clean['train'].texts)] == clean[
      'train'].texts
  evaluated = set(clean['validation'].texts) | set(clean['test'].texts)
  assert not evaluated & set(added)
  pairs = data_sources.load_pairs('train')
  by_text = dict(zip(pairs.originals.texts, pairs.originals.labels))
  by_text.update(zip(pairs.revisions.texts, pairs.revisions.labels))
  labels = mixed['train'].labels[len(clean['train'].texts):]
  assert all(by_text[t] == label for t, label in zip(added, labels))
  skipped = sum(o == r or bool({o, r} & evaluated)
                for o, r in zip(pairs.originals.texts, pairs.revisions.texts))
  assert len(added) == 2 * 2 * (1707 - skipped)  # Two copies of both halves.
  assert 0 < skipped < 1707 // 4  # About a fifth: our validation and test.
  # Each half is linked to the other, for the pair loss.
  first = len(clean['train'].texts)
  partner = mixed['train'].partner
  assert clean['train'].partner is None and np.all(partner[:first] == -1)
  index = np.arange(first, len(partner))
  np.testing.assert_array_equal(partner[index],
                                index + 1 - 2 * ((index - first) % 2))
  assert np.all(mixed['train'].labels[index]
                != mixed['train'].labels[partner[index]])


# ----------------------------------------------------------------------------
# Automatic counterfactuals.


def _words(value) -> set[str]:
  """Every word in a string or a nest of tuples, lists and dicts of them."""
  if isinstance(value, str):
    return {w.lower() for w in re.findall(r"[A-Za-z']+", value)}
  if isinstance(value, dict):
    value = [*value.keys(), *value.values()]
  if isinstance(value, (tuple, list)):
    return set().union(*map(_words, value))
  return set()


def test_the_lexicon_shares_no_word_with_the_suite_or_the_attack():
  suite = _words([getattr(analysis.lexicon, name)
                  for name in dir(analysis.lexicon) if name.isupper()])
  suite |= _words([case.text for _, cases in
                   analysis.behaviour._mft_cases().values()  # pylint: disable=protected-access
                   for case in cases])
  assert {'bad', 'not', 'wonderful', 'fine', 'decent'} <= suite  # Read all.
  assert not set(counterfactuals.ANTONYMS) & suite
  assert all(counterfactuals.ANTONYMS[counterfactuals.ANTONYMS[w]] == w
             and counterfactuals.POLARITY[w]
             != counterfactuals.POLARITY[counterfactuals.ANTONYMS[w]]
             for w in counterfactuals.ANTONYMS)


@pytest.mark.parametrize('text, label, how, edited', [
    ('A stunning film. Stunning!', 1, 'antonym',
     'An unremarkable film. Unremarkable!'),
    ('An amateurish, stale mess.', 0, 'antonym',
     'A polished, refreshing mess.'),
    ('The plot was riveting.', 1, 'negate', 'The plot was not riveting.'),
    ('The plot was riveting.', 0, 'antonym', None),  # Cue against the label.
    ('Riveting, though the ending is stale.', 1, 'antonym', None),  # Mixed.
    ("It wasn't exactly riveting.", 1, 'negate', None),  # Already negated.
    ('The plot was long.', 1, 'antonym', None),  # No cue.
])
def test_an_edit_changes_every_cue_or_nothing(text, label, how, edited):
  assert counterfactuals.edit(text, label, how) == edited


def test_generation_is_deterministic_and_flips_only_edited_reviews():
  texts = ['A stunning film.', 'The plot was long.', 'A stale script.',
           'The plot was riveting.', 'Superbly acted.'] * 20
  labels = [1, 1, 0, 0, 1] * 20
  run = lambda seed: counterfactuals.generate(
      texts, labels, fraction=0.5, how='both', unit='review', seed=seed)
  assert run(3) == run(3)
  assert run(3) != run(4)
  every_text, every_label = counterfactuals.generate(
      texts, labels, fraction=1.0, how='both', unit='review', seed=3)
  editable = [(t, l) for t, l in zip(texts, labels)
              if counterfactuals.edit(t, l, 'antonym')]
  assert len(every_text) == len(editable) == 60
  assert sorted(every_label) == sorted(1 - l for _, l in editable)
  assert not set(every_text) & set(texts)  # Each one was edited.
  assert {'An unremarkable film.', 'A stunning film.'.replace(
      'stunning', 'not stunning')} <= set(every_text)  # Both edits used.


def test_sentence_counterfactuals_are_pairs_of_cue_sentences():
  review = ('Great cast. The plot was riveting! A stunning film, with awesome '
            'music. Bad ending.')
  texts, labels = counterfactuals.generate(
      [review, 'The plot was riveting, the score stale.'], [1, 1],
      fraction=1.0, how='antonym', unit='sentence', seed=0)
  assert texts == ['The plot was riveting!', 'The plot was unwatchable!',
                   'A stunning film, with awesome music.',
                   'An unremarkable film, with atrocious music.']
  assert labels == [1, 0, 1, 0]


class _Untouchable(list):
  """A split's texts that fail the test if anything reads them."""

  def __iter__(self):
    raise AssertionError('validation or test texts were read')

  __getitem__ = __len__ = __contains__ = __iter__


def test_generation_reads_only_the_training_split(monkeypatch, tmp_path):
  rows = [('A stunning, riveting film.', 1), ('An atrocious script.', 0),
          ('The plot was long.', 1)] * 10
  train = data_sources.Split([f'{t} ({i})' for i, (t, _) in enumerate(rows)],
                             np.array([l for _, l in rows], np.int32))
  sealed = data_sources.Split(_Untouchable(), np.zeros(0, np.int32))
  monkeypatch.setattr(data_sources, '_load_embedded', lambda data_dir: {
      'train': train, 'validation': sealed, 'test': sealed})
  splits = data_sources.load_splits(data_config(
      tmp_path, generated_counterfactuals=1.0, generated_edit='antonym',
      generated_unit='review'))
  added = splits['train'].texts[len(rows):]
  assert len(added) == 20 and 'An unremarkable, unwatchable film. (0)' in added
  np.testing.assert_array_equal(splits['train'].labels[len(rows):],
                                [0, 1] * 10)
