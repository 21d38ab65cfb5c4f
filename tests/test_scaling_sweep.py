"""The scaling sweep end to end: trains each point, records it, skips it after.

Every test runs `python -m scaling.sweep` in a subprocess on the tiny variant
of configs/scaling.py (two one-layer models of a few steps each) and the
learnable synthetic CSV of conftest.py.
"""

import json
import shlex
import subprocess
import sys
import textwrap

import pytest

from helpers import REPO, check_ok, cli_env, copy_run, read_jsonl
from scaling import eta, points, runs as runs_lib, sweep
from sentiment_jax import models

# Over ~20 s of fixtures or CLI runs: left out of `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

# Fields of each results.jsonl line; scaling.fit needs the first ten.
FIELDS = ('n_params', 'n_params_total', 'tokens', 'flops', 'final_val_loss',
          'best_val_loss', 'best_val_accuracy', 'overrides', 'wall_time_s',
          'device', 'name', 'config_overrides', 'examples', 'steps',
          'mean_tokens_per_example', 'final_val_accuracy', 'resumed')
TINY_MODELS = ('num_layers=1,embed_dim=16,mlp_dim=64',
               'num_layers=1,embed_dim=32,mlp_dim=128')
TINY_RATES = (0.001, 0.003)  # configs/scaling.py's tiny learning-rate grid.
# Its one extension past the edge that wins: one grid ratio (3x) further.
PAST_EDGE = {0.001: 0.000333, 0.003: 0.009}


def run_sweep(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, '-m', 'scaling.sweep', *args],
                        cwd=REPO, env=cli_env(), capture_output=True,
                        text=True, timeout=300)


def sweep_args(workdir, data_csv,
               config: str = 'configs/scaling.py:tiny') -> list[str]:
  # The same command-line overrides every time: a sweep refuses to mix runs
  # trained with different ones.
  return [f'--config={config}', f'--workdir={workdir}',
          f'--config.data.source=csv:{data_csv}',
          f'--config.data.tfds_data_dir={data_csv.parent / "tfds"}']


def assert_one_line_error(result: subprocess.CompletedProcess, *parts: str):
  assert result.returncode != 0
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('error: '), result.stderr
  for part in parts:
    assert part in lines[0]


@pytest.fixture(scope='module')
def swept(tmp_path_factory, sentiment_csv):
  """(workdir, stdout) of the tiny sweep. Read-only: copy it to change it."""
  workdir = tmp_path_factory.mktemp('sweep') / 'sweep'
  result = check_ok(run_sweep(*sweep_args(workdir, sentiment_csv)))
  return workdir, result.stdout


def test_sweep_trains_and_records_every_point(swept, sentiment_csv):
  workdir, stdout = swept
  records = read_jsonl(workdir / 'results.jsonl')
  # Two rates always put the best at an edge, so each model's grid grows by
  # one rate past the edge that won; it then trains at the rate whose proxy
  # reached the lowest val loss of its three.
  trials = {r['name']: r['best_val_loss']
            for r in read_jsonl(workdir / 'tuning.jsonl')}
  assert len(trials) == len(TINY_MODELS) * (len(TINY_RATES) + 1)
  proxy = lambda model, rate: trials[
      f'{model},train_fraction=0.5,batch_size=16,learning_rate={rate}']
  best = []
  for model in TINY_MODELS:
    edge = min(TINY_RATES, key=lambda rate: proxy(model, rate))
    best.append(min((*TINY_RATES, PAST_EDGE[edge]),
                    key=lambda rate: proxy(model, rate)))
  assert [r['name'] for r in records] == [
      f'{model},train_fraction=1.0,batch_size=16,learning_rate={rate}'
      for model, rate in zip(TINY_MODELS, best)]
  # One tokenizer, trained once on the whole split and handed to each point.
  shared = workdir / 'tokenizer.json'
  for record in records:
    point = workdir / record['name']
    assert (point / 'tokenizer.json').read_bytes() == shared.read_bytes()
    assert f'--config.data.tokenizer_path={shared.resolve()}' in (
        point / 'train.log').read_text()
    # The sweep reads validation only; test is never scored.
    assert not (point / 'eval_test.json').exists()
  for record in records:
    assert set(FIELDS) <= record.keys()
    assert record['overrides']['model.embed_dim'] in (16, 32)
    assert record['config_overrides']['data.source'] == f'csv:{sentiment_csv}'
    assert record['n_params'] < record['n_params_total']
    # One epoch of the 320 training rows, in 20 steps of 16.
    assert (record['examples'], record['steps']) == (320, 20)
    assert record['tokens'] == pytest.approx(
        record['examples'] * record['mean_tokens_per_example'])
    assert record['flops'] > 6 * record['n_params'] * record['tokens']
    assert record['best_val_loss'] <= record['final_val_loss']
    assert not record['resumed']
    assert (workdir / record['name'] / 'train.log').is_file()
  assert records[0]['n_params'] < records[1]['n_params']
  assert 'tuning run 6 of 6' in stdout and 'sweep run 2 of 2' in stdout
  assert 'best proxy at the edge of' in stdout
  # The ETA waits for three timed runs; the tuning runs count for the sweep.
  done = [line for line in stdout.splitlines() if ' done in ' in line]
  assert [line.rsplit('ETA ', 1)[1] == 'after three runs' for line in done] == (
      [True] * 2 + [False] * 6)
  # The fit reads the results as written.
  runs = runs_lib.load_results(str(workdir / 'results.jsonl'))
  assert list(runs.n_params) == [r['n_params'] for r in records]
  assert list(runs.flops) == [r['flops'] for r in records]


def test_logged_command_trains_the_same_run(swept, tmp_path):
  # The sweep trains its points in its own process; each point's log starts
  # with the command line that trains the same run alone.
  workdir, _ = swept
  record = read_jsonl(workdir / 'results.jsonl')[0]
  first = (workdir / record['name'] / 'train.log').read_text().splitlines()[0]
  assert first.startswith('$ ')
  again = tmp_path / 'again'
  command = [f'--workdir={again}' if arg.startswith('--workdir=') else arg
             for arg in shlex.split(first[2:])]
  check_ok(subprocess.run(command, cwd=REPO, env=cli_env(),
                          capture_output=True, text=True, timeout=300))
  summary = json.loads((again / 'summary.json').read_text())
  assert summary['step'] == record['steps']
  assert summary['final_val_loss'] == record['final_val_loss']
  assert summary['best_val_accuracy'] == record['best_val_accuracy']


def test_rerun_skips_finished_points(swept, sentiment_csv):
  workdir, _ = swept
  before = {p: p.stat().st_mtime_ns for p in workdir.rglob('*') if p.is_file()}
  result = check_ok(run_sweep(*sweep_args(workdir, sentiment_csv)))
  # Four proxies, then six with the extensions, then the two points.
  assert result.stdout.count('skipped') == 12
  after = {p: p.stat().st_mtime_ns for p in workdir.rglob('*') if p.is_file()}
  assert after == before  # Nothing retrained, results.jsonl untouched.


def test_unrecorded_point_resumes_from_its_checkpoint(swept, sentiment_csv,
                                                      tmp_path):
  workdir = copy_run(swept[0], tmp_path / 'sweep')
  results = workdir / 'results.jsonl'
  first, last = read_jsonl(results)
  # As if the sweep was killed after training the last point but before
  # recording it.
  results.write_text(json.dumps(first) + '\n')
  result = check_ok(run_sweep(*sweep_args(workdir, sentiment_csv)))
  assert f'{last["name"]} (resuming)' in result.stdout
  again = read_jsonl(results)[1]
  assert again['resumed']
  for field in ('steps', 'tokens', 'n_params', 'final_val_loss',
                'best_val_accuracy'):
    assert again[field] == last[field], field


def test_eta_fits_overhead_plus_time_per_step_and_per_flop():
  # 20 s of overhead, 2 s per step and 1 s per TFLOP.
  def seconds(steps, flops):
    return 20.0 + 2.0 * steps + flops / 1e12

  runs = [(10.0, 1e12), (40.0, 2e12), (5.0, 3e13), (80.0, 5e13)]
  done = [(cost, seconds(*cost)) for cost in runs]
  ahead = [(100.0, 1e14), (1.0, 1e9)]
  assert eta.eta_seconds(done, ahead) == pytest.approx(
      sum(seconds(*cost) for cost in ahead), rel=1e-6)
  assert eta.eta_seconds(done[:2], ahead) is None


def test_train_flops_are_three_forward_passes_of_the_shared_formula():
  model = {'num_layers': 2, 'num_heads': 2, 'embed_dim': 8, 'mlp_dim': 32}
  config = models.TransformerConfig(vocab_size=1, max_len=1, **model)
  # 40 tokens in examples of 4: 10 examples, each forward and backward.
  assert sweep.train_flops(model, tokens=40, mean_seq=4) == pytest.approx(
      3 * 10 * models.forward_flops(config, 4))


def test_config_without_sweep_is_an_error(tmp_path, sentiment_csv):
  result = run_sweep(*sweep_args(tmp_path / 'sweep', sentiment_csv,
                                 config='configs/tiny.py'))
  assert_one_line_error(result, 'configs/tiny.py', 'get_sweep')
  assert not (tmp_path / 'sweep').exists()


def write_config(tmp_path, points: str):
  path = tmp_path / 'bad_sweep.py'
  path.write_text(textwrap.dedent(f'''\
      from configs import scaling

      def get_config():
        return scaling.get_config('tiny')

      def get_sweep():
        return {points}
      '''))
  return path


@pytest.mark.parametrize('points, message', [
    ('[]', 'no points'),
    ("[{'model.embed_dims': 8}]", 'model.embed_dims'),
    ("[{'data.source': 'csv:x'}]", '--config.data.source is swept'),
    ("[{'model.embed_dim': 8}, {'model.embed_dim': 8}]", 'repeats'),
])
def test_bad_sweep_is_an_error(tmp_path, sentiment_csv, points, message):
  config = write_config(tmp_path, points)
  result = run_sweep(*sweep_args(tmp_path / 'sweep', sentiment_csv,
                                 config=str(config)))
  assert_one_line_error(result, message)
  assert not (tmp_path / 'sweep' / 'results.jsonl').exists()


def test_learning_rate_grid_may_follow_the_model(tmp_path, sentiment_csv):
  # A grid for width 16 only: width 32's empty grid is refused before any
  # run, with the model named.
  config = write_config(
      tmp_path, "[{'model.embed_dim': 16}, {'model.embed_dim': 32}]")
  config.write_text(config.read_text() + textwrap.dedent('''
      def get_tuning():
        return {'learning_rates': lambda model: {16: [1e-3, 2e-3]}.get(
                    model['model.embed_dim'], []),
                'proxy': {'data.train_fraction': 0.5}}
      '''))
  _, tuning = points.load_sweep(str(config))
  assert tuning.rates({'model.embed_dim': 16}) == (1e-3, 2e-3)
  with pytest.raises(points.SweepError, match='positive floats'):
    points.Tuning(lambda model: 'fast', {}).rates({'model.embed_dim': 16})
  result = run_sweep(*sweep_args(tmp_path / 'sweep', sentiment_csv,
                                 config=str(config)))
  assert_one_line_error(result, 'embed_dim=32', 'learning rates ()',
                        'positive floats')
  assert not (tmp_path / 'sweep').exists()


def test_grid_grows_only_past_a_winning_edge():
  assert points.beyond_edge({1e-3: 0.5, 2e-3: 0.4, 4e-3: 0.6}) is None
  assert points.beyond_edge({1e-3: 0.3, 2e-3: 0.4, 4e-3: 0.6}) == 5e-4
  assert points.beyond_edge({4e-3: 0.3, 1e-3: 0.5, 2e-3: 0.4}) == 8e-3
  assert points.beyond_edge({1e-3: 0.3}) is None


def test_failing_point_stops_the_sweep(tmp_path, sentiment_csv):
  config = write_config(
      tmp_path, "[{'data.train_fraction': 2.0}, {'data.train_fraction': 1.0}]")
  workdir = tmp_path / 'sweep'
  result = run_sweep(*sweep_args(workdir, sentiment_csv,
                                 config=str(config)))
  assert_one_line_error(result, 'train_fraction=2.0 failed',
                        'must be in (0, 1]', 'train.log')
  assert not (workdir / 'results.jsonl').exists()
  assert not (workdir / 'train_fraction=1.0').exists()
