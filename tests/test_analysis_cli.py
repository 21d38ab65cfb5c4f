"""`python -m analysis.main` end to end on a tiny run of the embedded data, and its bad input."""

import json
import math

import pytest

from helpers import check_ok, copy_run, run_analysis, run_cli
from test_cli import message_lines

# Over ~20 s of fixtures or CLI runs: left out of `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

SMALL = ['--bootstrap_samples=20', '--attack_examples=10', '--ood_examples=60',
         '--feature_examples=100', '--dir_examples=15']
REQUIRED = [
    ('calibration', 'test', 'ece_15_before'), ('calibration', 'test',
                                               'ece_15_after'),
    ('calibration', 'temperature'),
    ('calibration', 'rotten_tomatoes', 'ece_15_after'),
    ('behaviour', 'num_cases'), ('behaviour', 'tests'),
    ('shift', 'rotten_tomatoes', 'accuracy'), ('selective', 'test', 'aurc'),
    ('selective', 'test', 'coverage_at_accuracy_0.95'), ('seconds',),
    ('counterfactual', 'cad_test', 'original_accuracy'),
    ('counterfactual', 'cad_test', 'revised_accuracy'),
    ('counterfactual', 'cad_test', 'pair_accuracy'),
    ('counterfactual', 'cad_test', 'pair_accuracy_ci95')]
OOD_SETS = ('rotten_tomatoes', 'shuffled_reviews', 'python_docs',
            'random_words')
OOD_SCORES = ('msp', 'max_logit', 'energy', 'mahalanobis', 'length')
ATTACKS = ('synonym_strict', 'synonym_lax', 'hotflip')


def get(tree, path):
  for key in path:
    tree = tree[key]
  return tree


@pytest.fixture(scope='module')
def embedded_run(tmp_path_factory):
  """The tiny config on the embedded data, which has a Rotten Tomatoes split."""
  workdir = tmp_path_factory.mktemp('runs') / 'embedded'
  check_ok(run_cli('--config=configs/tiny.py', f'--workdir={workdir}',
                   '--config.train.num_epochs=1'))
  return workdir


@pytest.fixture(scope='module')
def studied(embedded_run, tmp_path_factory):
  out_dir = tmp_path_factory.mktemp('analysis') / 'out'
  result = check_ok(run_analysis(f'--workdir={embedded_run}',
                                 f'--out_dir={out_dir}', *SMALL))
  return out_dir, result


def test_writes_results_figures_and_report(studied, embedded_run):
  out_dir, result = studied
  results = json.loads((out_dir / 'results.json').read_text())
  for model in (results, results['baseline']):
    for path in REQUIRED:
      assert get(model, path) is not None, path
    for set_name in OOD_SETS:
      for score in OOD_SCORES:
        assert {'auroc', 'fpr95'} <= set(model['ood'][set_name][score])
    for name in ATTACKS:
      assert 'after_attack_accuracy' in model['attack'][name]
    for test in model['behaviour']['tests']:
      assert {'name', 'type', 'failure_rate', 'ci95', 'n'} <= set(test)
  assert results['ood']['python_docs']['mahalanobis']['auroc'] is not None
  assert results['attack']['hotflip']['after_attack_accuracy'] is not None
  assert results['behaviour']['num_tests'] >= 12
  # The embedded run trains with the hygiene: no test original in training.
  assert results['counterfactual']['cad_test']['num_originals_trained_on'] == 0
  assert {p.name for p in (out_dir / 'figures').iterdir()} == {
      'calibration.png', 'selective.png', 'ood.png', 'behaviour.png'}
  report = (out_dir / 'REPORT.md').read_text()
  assert results['meta']['command'] in report
  assert f'{results["calibration"]["temperature"]:.3f}' in report
  # A per-study time on stderr and a final table on stdout.
  for study in ('calibration', 'behaviour', 'shift', 'ood', 'selective',
                'attack', 'counterfactual'):
    assert f'\n{study}: ' in '\n' + result.stderr
  assert 'calibration.test.ece_15_after' in result.stdout
  assert json.loads((embedded_run / 'calibration.json').read_text())[
      'temperature'] == results['calibration']['temperature']


def test_predict_and_eval_use_the_fitted_temperature(studied, embedded_run):
  temperature = json.loads(
      (embedded_run / 'calibration.json').read_text())['temperature']
  result = check_ok(run_cli(
      '--config=configs/tiny.py', f'--workdir={embedded_run}',
      '--mode=predict', '--text=a wonderful film', '--text=dull and awful',
      '--target_accuracy=0.99'))
  rows = [json.loads(line) for line in result.stdout.splitlines()]
  for row in rows:
    raw = row['p_positive_raw']
    expected = 1 / (1 + math.exp(-math.log(raw / (1 - raw)) / temperature))
    assert row['p_positive'] == pytest.approx(expected, abs=2e-6)
    assert isinstance(row['abstain'], bool)
  assert 'no fitted temperature' not in result.stderr
  check_ok(run_cli('--config=configs/tiny.py', f'--workdir={embedded_run}',
                   '--mode=eval', '--config.eval.baseline=False'))
  report = json.loads((embedded_run / 'eval_test.json').read_text())
  assert report['calibration']['temperature'] == temperature
  assert set(report['calibration']['calibrated']) == {'log_loss', 'brier',
                                                      'ece_15'}


def test_one_study_alone(embedded_run, tmp_path):
  run = copy_run(embedded_run, tmp_path / 'run')
  out_dir = tmp_path / 'out'
  check_ok(run_analysis(f'--workdir={run}', f'--out_dir={out_dir}',
                        '--studies=selective', *SMALL))
  results = json.loads((out_dir / 'results.json').read_text())
  assert 'selective' in results and 'calibration' not in results
  assert 'Selective prediction' in (out_dir / 'REPORT.md').read_text()


@pytest.mark.parametrize('name', ['missing_workdir', 'untrained_workdir',
                                  'unknown_study', 'unwritable_out_dir'])
def test_bad_input_fails_with_one_clear_line(name, embedded_run, tmp_path):
  (tmp_path / 'empty').mkdir()
  (tmp_path / 'a_file').write_text('')
  out_dir = tmp_path / 'out'
  args, expected = {
      'missing_workdir': ([f'--workdir={tmp_path / "nope"}'], 'nope'),
      'untrained_workdir': ([f'--workdir={tmp_path / "empty"}'], 'empty'),
      'unknown_study': ([f'--workdir={embedded_run}', '--studies=ood,vibes'],
                        'vibes'),
      'unwritable_out_dir': ([f'--workdir={embedded_run}',
                              f'--out_dir={tmp_path / "a_file" / "out"}'],
                             'a_file'),
  }[name]
  if name != 'unwritable_out_dir':
    args.append(f'--out_dir={out_dir}')
  result = run_analysis(*args)
  assert result.returncode != 0
  assert 'Traceback' not in result.stderr, result.stderr[-3000:]
  lines = message_lines(result.stderr)
  assert len(lines) == 1 and lines[0].startswith('error: '), lines
  assert expected in lines[0]
  assert not out_dir.exists()
