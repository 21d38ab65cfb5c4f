"""`python -m sentiment_jax.compare`: a table row per run, read from its files."""

import json
import subprocess
import sys

import pytest

from configs import base
from sentiment_jax import compare

from helpers import REPO, cli_env, copy_run


def run_compare(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, '-m', 'sentiment_jax.compare', *args],
                        cwd=REPO, env=cli_env(), capture_output=True, text=True,
                        timeout=120)


def test_a_row_holds_the_runs_overrides_and_results(trained_run):
  row = compare.row(trained_run)
  summary = json.loads((trained_run / 'summary.json').read_text())
  test = json.loads((trained_run / 'eval_test.json').read_text())
  assert row['summary']['best_val_accuracy'] == summary['best_val_accuracy']
  assert row['test']['accuracy'] == test['metrics']['accuracy']
  assert row['rotten_tomatoes'] is None and row['pretrained'] is None
  # The tiny config's overrides of base, and only settings, not locations.
  assert 'train.num_epochs=3' in row['changes']
  assert not any(c.startswith(('data.tfds_data_dir', 'eval.', 'pretrain.'))
                 for c in row['changes'])


def test_the_table_has_a_row_per_run(trained_run, tmp_path):
  other = copy_run(trained_run, tmp_path / 'other')
  result = run_compare(str(trained_run), str(other))
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert len(lines) > 4 and lines[2].startswith('| trained |')
  assert lines[3].startswith('| other |')
  # Same settings: one group, whose std over two equal runs is zero.
  assert lines[-1].endswith(' ± 0.0000 | not evaluated | not evaluated |')
  assert '| trained, other |' in lines[-1]


def test_counterfactual_dev_scores_join_the_row_and_the_tradeoff_figure(
    trained_run, tmp_path):
  run = copy_run(trained_run, tmp_path / 'scored')
  scores = {'num_pairs': 245, 'original_accuracy': 0.9,
            'revised_accuracy': 0.7, 'pair_accuracy': 0.6}
  (run / 'eval_cad_dev.json').write_text(json.dumps(
      {'split': 'cad_dev', 'transformer': {'all': scores, 'unseen': scores}}))
  figure = tmp_path / 'tradeoff.png'
  result = run_compare(f'--tradeoff={figure}', str(trained_run), str(run))
  assert result.returncode == 0, result.stderr
  assert '| 0.700 / 0.600 |' in result.stdout.splitlines()[3]
  assert figure.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_runs_differing_only_in_seed_are_grouped_with_mean_and_std():
  def fake(name, changes, val, test):
    return {'name': name, 'changes': changes, 'rotten_tomatoes': None,
            'summary': {'best_val_accuracy': val},
            'test': {'accuracy': test}, 'cad_dev': None}
  rows = [fake('a', ['model.ngram_buckets=8', 'train.seed=1'], 0.90, 0.80),
          fake('b', ['model.ngram_buckets=8', 'train.seed=2'], 0.92, 0.84),
          fake('c', ['model.ngram_buckets=8'], 0.94, 0.88),
          fake('d', ['train.seed=2'], 0.5, 0.5)]
  [group] = compare.seed_groups(rows)
  assert group['names'] == ['a', 'b', 'c']
  assert group['changes'] == ['model.ngram_buckets=8']
  assert group['val']['mean'] == pytest.approx(0.92)
  assert group['test']['std'] == pytest.approx(0.04)
  assert group['rotten_tomatoes'] is None


def test_the_tradeoff_has_one_point_per_setting_with_seeds_averaged():
  def fake(name, changes, revised, test):
    return {'name': name, 'changes': changes, 'test': {'accuracy': test},
            'cad_dev': revised and {'revised_accuracy': revised}}
  rows = [fake('a', ['model.ngram_buckets=8', 'train.seed=1'], 0.7, 0.80),
          fake('b', ['model.ngram_buckets=8', 'train.seed=2'], 0.9, 0.84),
          fake('c', [], 0.5, 0.88),
          fake('d', ['train.seed=3'], None, 0.5)]
  several, single = compare.tradeoff_points(rows)
  assert several['label'] == 'a (2 seeds)'
  assert several['x'] == pytest.approx(0.8)
  assert several['y_std'] == pytest.approx(0.02 * 2 ** 0.5)
  # A seed without CAD dev scores is left out of its setting's point.
  assert single == {'label': 'c', 'seeds': 1, 'x': 0.5, 'y': 0.88,
                    'x_std': 0.0, 'y_std': 0.0}


def test_a_missing_or_corrupt_run_gets_one_line(trained_run, tmp_path):
  result = run_compare(str(tmp_path / 'nowhere'))
  assert result.returncode != 0 and not result.stdout
  assert result.stderr.count('\n') == 1 and 'no finished training run' in (
      result.stderr)
  broken = copy_run(trained_run, tmp_path / 'broken')
  (broken / 'eval_test.json').write_text('{not json')
  result = run_compare(str(broken))
  assert result.returncode != 0 and 'eval_test.json is corrupt' in result.stderr
  assert result.stderr.count('\n') == 1


def test_a_fine_tune_names_its_pretraining_settings(trained_run, tmp_path):
  source = tmp_path / 'pretrained'
  source.mkdir()
  pretrain = dict(base.get_config().pretrain.to_dict(), objective='electra',
                  num_epochs=3, tied_decoder=True)  # MLM's alone: not named.
  (source / 'config.json').write_text(json.dumps({'pretrain': pretrain}))
  (source / 'pretrain_summary.json').write_text(json.dumps(
      {'held_out': {'accuracy': 0.25}, 'wall_seconds_this_invocation': 60}))
  run = copy_run(trained_run, tmp_path / 'fine_tuned')
  config = json.loads((run / 'config.json').read_text())
  config['train']['init_from'] = str(source)
  (run / 'config.json').write_text(json.dumps(config))
  row = compare.row(run)
  assert row['pretrained']['held_out']['accuracy'] == 0.25
  named = [c for c in row['changes'] if c.startswith('pretrain.')]
  assert named == ['pretrain.num_epochs=3', 'pretrain.objective=electra']
