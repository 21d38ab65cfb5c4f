"""Tests of the scaling-law fit: recovery on synthetic sweeps, the Chinchilla
replication, held-out validation, the report, and errors on bad input.

Synthetic sweeps follow a known L(N, D) with 0.5% multiplicative noise, drawn
with fixed seeds: a 95% interval misses the truth in ~5% of draws, so a test of
coverage is a test of these draws. Fits compile once per shape (seconds), so
the fitted results are module-scoped.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from helpers import LAW_NOISE, write_law_results
from scaling import analysis, beyond, fitting, laws, report, runs as runs_lib

# Over ~20 s of fixtures or CLI runs: left out of `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CHINCHILLA = REPO.parent / 'shared' / 'data' / 'chinchilla_fig4_points.csv'
# Besiroglu et al. (2024), replicating Chinchilla approach 3 on these points.
PUBLISHED = {'E': 1.8172, 'alpha': 0.3473, 'beta': 0.3672}
TRUTH = {'E': 0.3, 'A': 40.0, 'alpha': 0.35, 'B': 60.0, 'beta': 0.3}


def true_loss(n: np.ndarray, d: np.ndarray) -> np.ndarray:
  return (
      TRUTH['E']
      + TRUTH['A'] / n ** TRUTH['alpha']
      + TRUTH['B'] / d ** TRUTH['beta']
  )


def write_results(path: Path, n: np.ndarray, d: np.ndarray, seed: int) -> Path:
  """A results.jsonl of runs at (n, d) [runs] with noisy losses from TRUTH."""
  return write_law_results(path, n, d, true_loss(n, d), seed)


@pytest.fixture(scope='module')
def grid_runs(tmp_path_factory) -> runs_lib.Runs:
  """A 6 x 5 grid of N x D, two decades each."""
  n, d = np.meshgrid(np.geomspace(1e5, 1e7, 6), np.geomspace(1e6, 1e8, 5))
  path = tmp_path_factory.mktemp('grid') / 'results.jsonl'
  return runs_lib.load_results(
      str(write_results(path, n.ravel(), d.ravel(), seed=1))
  )


@pytest.fixture(scope='module')
def joint(grid_runs) -> analysis.LawResult:
  return analysis.fit_joint(grid_runs, num_resamples=200, seed=0)


@pytest.fixture(scope='module')
def cross_runs(tmp_path_factory) -> runs_lib.Runs:
  """Ten N at the largest D and ten D at the largest N, for the 1-D laws."""
  n, d = np.geomspace(1e5, 1e7, 10), np.geomspace(1e6, 1e8, 10)
  path = tmp_path_factory.mktemp('cross') / 'results.jsonl'
  n_all = np.concatenate([n, np.full(9, n[-1])])
  d_all = np.concatenate([np.full(10, d[-1]), d[:-1]])
  return runs_lib.load_results(str(write_results(path, n_all, d_all, seed=1)))


@pytest.fixture(scope='module')
def single(cross_runs) -> dict[str, analysis.LawResult | str]:
  return analysis.fit_single_variable(cross_runs, num_resamples=100, seed=0)


def test_joint_fit_recovers_the_truth_within_its_interval(joint):
  assert joint.fit.status == laws.CONVERGED
  assert joint.fit.num_starts == 4500
  params = joint.parameters()
  assert params['E'][0] == pytest.approx(TRUTH['E'], abs=0.05)
  assert params['alpha'][0] == pytest.approx(TRUTH['alpha'], abs=0.03)
  assert params['beta'][0] == pytest.approx(TRUTH['beta'], abs=0.03)
  for name, (_, low, high) in params.items():
    assert low <= TRUTH[name] <= high, (name, low, high)


def test_fits_leave_the_project_in_float32(joint):
  assert joint.fit.theta.dtype == np.float64
  assert jnp.zeros(1).dtype == jnp.float32


def test_single_variable_laws_recover_the_truth(single):
  # At fixed D the D term joins the constant, and vice versa.
  n_max, d_max = 1e7, 1e8
  expected = {
      'L(N)': (
          'alpha',
          TRUTH['alpha'],
          TRUTH['E'] + TRUTH['B'] / d_max ** TRUTH['beta'],
      ),
      'L(D)': (
          'beta',
          TRUTH['beta'],
          TRUTH['E'] + TRUTH['A'] / n_max ** TRUTH['alpha'],
      ),
  }
  for title, (exponent, value, constant) in expected.items():
    result = single[title]
    assert isinstance(result, analysis.LawResult), result
    assert result.fit.num_points == 10
    params = result.parameters()
    assert params[exponent][0] == pytest.approx(value, abs=0.05)
    assert params['E'][0] == pytest.approx(constant, rel=0.1)
    assert params[exponent][1] <= value <= params[exponent][2]


def test_single_variable_law_with_too_few_runs_is_skipped(grid_runs):
  three_runs = grid_runs.subset(np.arange(len(grid_runs.loss)) < 3)
  result = analysis.fit_single_variable(three_runs, num_resamples=10, seed=0)
  assert all(
      isinstance(r, str) and 'need at least 4' in r for r in result.values()
  )


def test_holdout_predicts_the_largest_runs(grid_runs):
  holdout = analysis.holdout_validation(grid_runs, fraction=0.2)
  assert len(holdout.held.loss) == 6
  assert (holdout.held.n_params * holdout.held.tokens).min() >= (
      holdout.train.n_params * holdout.train.tokens
  ).max()
  # Extrapolating from 24 noisy runs: a few times the noise at most.
  assert np.abs(holdout.relative_error).max() < 5 * LAW_NOISE


def test_compute_optimal_allocation_spends_the_budget(joint):
  budgets = np.array([1e15, 1e18])
  allocation = fitting.compute_optimal(joint.fit.theta, budgets)
  np.testing.assert_allclose(
      6 * allocation['n_opt'] * allocation['d_opt'], budgets, rtol=1e-9
  )
  assert allocation['a'] + allocation['b'] == pytest.approx(1.0)
  # Optimal: moving along the budget in either direction raises the loss.
  n_opt, d_opt = allocation['n_opt'][0], allocation['d_opt'][0]
  loss = lambda n, d: laws.predict(joint.fit.theta, np.log([[n, d]]))[0]
  for factor in (0.9, 1.1):
    assert loss(n_opt, d_opt) < loss(n_opt * factor, d_opt / factor)


def test_compute_optimal_with_real_flops_per_token(joint):
  """C = k N^p D (attention makes small models cost more than 6ND)."""
  budgets, k, p = np.array([1e15, 1e18]), 12.0, 0.9
  allocation = fitting.compute_optimal(joint.fit.theta, budgets, k, p)
  n_opt, d_opt = allocation['n_opt'], allocation['d_opt']
  np.testing.assert_allclose(k * n_opt**p * d_opt, budgets, rtol=1e-9)
  loss = lambda n, d: laws.predict(joint.fit.theta, np.log([[n, d]]))[0]
  for factor in (0.9, 1.1):  # Along the budget: N * f costs f^p more per D.
    assert loss(n_opt[0], d_opt[0]) < loss(n_opt[0] * factor,
                                           d_opt[0] / factor**p)


def test_flops_per_token_law_recovers_k_and_p():
  n = np.geomspace(1e4, 1e6, 6)
  d = np.full(6, 1e7)
  assert fitting.flops_per_token_law(n, 6 * n * d, d) == pytest.approx(
      (6.0, 1.0))
  k, p = fitting.flops_per_token_law(n, 5.0 * n**0.8 * d, d)
  assert (k, p) == (pytest.approx(5.0), pytest.approx(0.8))


def test_report_has_every_section_and_plot(tmp_path, grid_runs, joint, single):
  holdout = analysis.holdout_validation(grid_runs, fraction=0.2)
  path = report.write_report(
      tmp_path,
      grid_runs,
      joint,
      single,
      {'additive': holdout},
      None,
      command='python -m scaling.fit --results=x',
  )
  text = path.read_text()
  for heading in (
      '## Joint law',
      '## Single-variable laws',
      '## Compute-optimal allocation',
      '## Held-out validation',
      '## Our fitter on the Chinchilla data',
      '## What small scale means',
  ):
    assert heading in text
  figures = sorted(p.name for p in (tmp_path / 'figures').iterdir())
  assert figures == [
      'holdout.png',
      'loss_vs_d.png',
      'loss_vs_n.png',
      'residuals.png',
  ]
  assert all(f'figures/{name}' in text for name in figures)
  assert 'nan' not in text.lower()
  # fit.json carries the same numbers for programs.
  fit = json.loads((tmp_path / 'fit.json').read_text())
  for name in ('E', 'alpha', 'beta'):
    low, high = fit['joint'][name]['ci95']
    assert low <= fit['joint'][name]['estimate'] <= high
  assert fit['joint']['alpha']['estimate'] == pytest.approx(
      joint.parameters()['alpha'][0])
  errors = [abs(r['predicted'] - r['actual']) / r['actual']
            for r in fit['holdout']['runs']]
  assert fit['holdout']['mean_abs_rel_error'] == pytest.approx(np.mean(errors))
  assert fit['holdout']['max_abs_rel_error'] == pytest.approx(max(errors))
  assert fit['num_runs'] == len(grid_runs.loss) and fit['chinchilla'] is None


@pytest.mark.skipif(
    not CHINCHILLA.exists(),
    reason=f'Chinchilla points not found at {CHINCHILLA}',
)
def test_reproduces_the_published_chinchilla_fit():
  runs = runs_lib.load_chinchilla(str(CHINCHILLA))
  assert len(runs.loss) == 240
  result = fitting.fit_law(runs.log_x('n_params', 'tokens'), np.log(runs.loss))
  assert result.num_starts == 4500 and result.status == laws.CONVERGED
  params = fitting.named(result.theta, ('A', 'B'), ('alpha', 'beta'))
  assert params['E'] == pytest.approx(PUBLISHED['E'], abs=0.01)
  assert params['alpha'] == pytest.approx(PUBLISHED['alpha'], abs=0.005)
  assert params['beta'] == pytest.approx(PUBLISHED['beta'], abs=0.005)


@pytest.mark.parametrize(
    'lines, message',
    [
        (
            ['{"n_params": 1e6, "flops": 1e14, "best_val_loss": 1.0}'],
            "2: missing field 'tokens'",
        ),
        (
            ['{"n_params": 1e6, "tokens": 1e7, "best_val_loss": 1.0}'],
            "2: missing field 'flops'",
        ),
        (['not json'], '2: invalid JSON'),
        (
            ['{"n_params": -1, "tokens": 1e6, "flops": 1e14,'
             ' "best_val_loss": 1.0}'],
            "2: field 'n_params' must be a positive number, got -1",
        ),
        (
            ['{"n_params": 1e6, "tokens": "many", "flops": 1e14,'
             ' "best_val_loss": 1.0}'],
            "2: field 'tokens' must be a positive number, got 'many'",
        ),
    ],
)
def test_bad_results_name_the_line_and_field(tmp_path, lines, message):
  good = '{"n_params": 1e6, "tokens": 1e7, "flops": 1e14, "best_val_loss": 1.0}'
  path = tmp_path / 'results.jsonl'
  path.write_text('\n'.join([good] + lines) + '\n')
  with pytest.raises(laws.ScalingFitError, match=f'results.jsonl:{message}'):
    runs_lib.load_results(str(path))


def test_runs_of_one_point_at_other_seeds_are_averaged(tmp_path):
  def record(width, loss, seed=None):
    overrides = {'model.embed_dim': width, 'data.train_fraction': 1.0}
    if seed is not None:
      overrides['train.seed'] = seed
    return {'overrides': overrides, 'n_params': width**2, 'tokens': 1e6,
            'flops': 1e12, 'best_val_loss': loss, 'wall_time_s': 10.0}

  path = tmp_path / 'results.jsonl'
  path.write_text(''.join(json.dumps(r) + '\n' for r in [
      record(8, 0.40), record(16, 0.30), record(8, 0.50, seed=1),
      record(8, 0.45, seed=2)]))
  runs = runs_lib.load_results(str(path))
  np.testing.assert_allclose(runs.loss, [0.45, 0.30])
  np.testing.assert_allclose(runs.n_params, [64, 256])
  averaged, single = runs.records
  assert averaged['replicate_losses'] == [0.40, 0.50, 0.45]
  assert averaged['wall_time_s'] == 30.0
  assert 'replicate_losses' not in single
  assert runs.num_trained() == 4


def test_runs_of_too_few_steps_can_be_left_out(tmp_path):
  path = tmp_path / 'results.jsonl'
  path.write_text(''.join(json.dumps(
      {'n_params': 1e4, 'tokens': 1e6 * steps, 'flops': 1e12,
       'best_val_loss': 0.5, 'steps': steps}) + '\n' for steps in (77, 311)))
  assert len(runs_lib.load_results(str(path)).loss) == 2
  kept = runs_lib.load_results(str(path), min_steps=300)
  assert [r['steps'] for r in kept.records] == [311]
  with pytest.raises(laws.ScalingFitError, match='no runs of 400 steps'):
    runs_lib.load_results(str(path), min_steps=400)


def test_too_few_points_is_an_error():
  with pytest.raises(laws.ScalingFitError, match='need at least 6'):
    fitting.fit_law(np.ones((5, 2)), np.zeros(5))


def run_cli(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run(
      [sys.executable, '-m', 'scaling.fit', *args],
      cwd=REPO,
      capture_output=True,
      text=True,
      timeout=120,
  )


@pytest.mark.parametrize(
    'records, message',
    [
        (
            [
                {'n_params': 1e6, 'tokens': 1e7, 'flops': 1e14,
                 'best_val_loss': 1.0},
                {'n_params': 1e6, 'flops': 1e14, 'best_val_loss': 1.0},
            ],
            ":2: missing field 'tokens'",
        ),
        (
            [
                {'n_params': 10.0**i, 'tokens': 1e7, 'flops': 1e14,
                 'best_val_loss': 1.0}
                for i in range(3)
            ],
            'got 3 points, need at least 6 for a law with 5 parameters',
        ),
    ],
)
def test_cli_reports_bad_input_in_one_line(tmp_path, records, message):
  path = tmp_path / 'results.jsonl'
  path.write_text(''.join(json.dumps(r) + '\n' for r in records))
  result = run_cli(f'--results={path}', f'--out_dir={tmp_path}')
  assert result.returncode != 0
  assert 'Traceback' not in result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith(f'error: {path}') and message in lines[0]


def truth_theta() -> np.ndarray:
  """TRUTH as the fitter's theta: (log E, log A, log B, alpha, beta)."""
  return np.array([np.log(TRUTH['E']), np.log(TRUTH['A']),
                   np.log(TRUTH['B']), TRUTH['alpha'], TRUTH['beta']])


def test_repeated_epochs_are_discounted():
  assert beyond.effective_tokens(1e6, 1.0) == 1e6  # One epoch: all fresh.
  assert beyond.effective_tokens(1e6, 0.5) == 5e5  # Half of the first.
  # A second epoch is worth nearly a fresh one; many approach U (1 + R*).
  assert 1.9e6 < beyond.effective_tokens(1e6, 2.0) < 2e6
  assert beyond.effective_tokens(1e6, 1e4) == pytest.approx(
      1e6 * (1 + beyond.R_STAR))


def test_compute_for_a_target_loss_reaches_it_optimally():
  theta = truth_theta()
  found = beyond.compute_for_loss(theta, 0.5, k=6.0, p=1.0)
  n, d = found['n'], found['d']
  assert found['compute'] == pytest.approx(6 * n * d)
  # Reached at this budget's optimum, within the budget grid's 40 per decade.
  assert true_loss(n, d) <= 0.5 < true_loss(n / 1.07, d / 1.07)
  # Any other split of the same compute does worse.
  for shift in (0.5, 2.0):
    assert true_loss(n * shift, d / shift) > true_loss(n, d)
  assert beyond.compute_for_loss(theta, TRUTH['E'], 6.0, 1.0) is None


def test_real_run_is_predicted_epoch_by_epoch(trained_run):
  theta = truth_theta()
  [run] = beyond.predict_runs(theta, [str(trained_run)])
  summary = json.loads((trained_run / 'summary.json').read_text())
  assert run['n'] == summary['num_params_non_embedding']
  config = json.loads((trained_run / 'config.json').read_text())
  assert run['ngram_buckets'] == config['model']['ngram_buckets']
  assert [r['epochs'] for r in run['rows']] == [1.0, 2.0, 3.0]
  for row in run['rows']:
    assert row['predicted'] == pytest.approx(true_loss(
        run['n'], beyond.effective_tokens(run['unique_tokens'],
                                          row['epochs'])))
    assert row['predicted_naive'] <= row['predicted']
  with pytest.raises(laws.ScalingFitError, match='not a finished training'):
    beyond.real_run(trained_run / 'missing')
