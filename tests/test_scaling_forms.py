"""Tests of the joint law's two forms: the multiplicative law's value and
compute-optimal allocation, and the rule that chooses between the forms.

Synthetic sweeps follow a known law with 0.5% multiplicative noise, drawn with
fixed seeds (`helpers.write_law_results`), as in test_scaling_fit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, cli_env, write_law_results
from scaling import analysis, fitting, laws, runs as runs_lib

# Over ~20 s of fixtures or CLI runs: left out of `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

# (log E, log A, log B, alpha, beta): E = 0.3, A = 40, B = 60.
TRUTH = np.array([np.log(0.3), np.log(40.0), np.log(60.0), 0.35, 0.3])


def law(n, d, form: str) -> np.ndarray:
  e, a, b = np.exp(TRUTH[:3])
  alpha, beta = TRUTH[3:]
  if form == 'additive':
    return e + a / n**alpha + b / d**beta
  return (e + b / d**beta) * (1 + a / n**alpha)


def sweep(path: Path, form: str, seed: int) -> Path:
  """A results.jsonl of a 6 x 5 grid of N x D, two decades each."""
  n, d = (v.ravel() for v in np.meshgrid(np.geomspace(1e5, 1e7, 6),
                                         np.geomspace(1e6, 1e8, 5)))
  return write_law_results(path, n, d, law(n, d, form), seed)


def test_multiplicative_law_is_the_product_of_its_terms():
  n, d = np.array([1e3, 1e5, 1e7]), np.array([1e4, 1e6, 1e9])
  log_x = np.log(np.stack([n, d], axis=1))
  np.testing.assert_allclose(laws.predict(TRUTH, log_x, 'multiplicative'),
                             law(n, d, 'multiplicative'), rtol=1e-12)
  np.testing.assert_allclose(laws.predict(TRUTH, log_x),
                             law(n, d, 'additive'), rtol=1e-12)
  # One variable: the two forms are the same law, E + A/X^alpha.
  one = TRUTH[[0, 1, 3]]
  np.testing.assert_allclose(laws.predict(one, log_x[:, :1], 'multiplicative'),
                             laws.predict(one, log_x[:, :1]), rtol=1e-12)


def test_multiplicative_allocation_spends_the_budget_optimally():
  budgets, k, p = np.array([1e12, 1e15, 1e30]), 12.0, 0.9
  allocation = fitting.compute_optimal(TRUTH, budgets, k, p, 'multiplicative')
  n_opt, d_opt = allocation['n_opt'], allocation['d_opt']
  np.testing.assert_allclose(k * n_opt**p * d_opt, budgets, rtol=1e-9)
  loss = lambda n, d: law(n, d, 'multiplicative')
  for n, d in zip(n_opt, d_opt):
    for factor in (0.98, 1.02):  # Along the budget: N * f costs f^p more.
      assert loss(n, d) < loss(n * factor, d / factor**p)
  # Far out, N* grows like C^a, a = beta / (alpha + p beta).
  far = fitting.compute_optimal(TRUTH, np.array([1e40, 1e41]), k, p,
                                'multiplicative')['n_opt']
  assert np.log10(far[1] / far[0]) == pytest.approx(allocation['a'], rel=1e-3)


def test_a_non_positive_exponent_leaves_the_allocation_undefined():
  flat = TRUTH.copy()
  flat[3] = -0.1
  allocation = fitting.compute_optimal(flat, np.array([1e15]),
                                       form='multiplicative')
  assert np.isnan(allocation['n_opt']).all() and np.isnan(allocation['a'])


def test_the_rule_picks_the_additive_form_for_additive_data(tmp_path):
  runs = runs_lib.load_results(str(sweep(tmp_path / 'r.jsonl', 'additive', 3)))
  choice = analysis.select_form(runs, 0.2)
  assert choice.form == 'additive', choice.errors
  # The fit set is the 24 runs left by the hold-out; 5 of them are predicted.
  assert (choice.num_train, choice.num_held) == (19, 5)


def test_cli_chooses_and_fits_the_multiplicative_form(tmp_path):
  path = sweep(tmp_path / 'results.jsonl', 'multiplicative', 4)
  result = subprocess.run(
      [sys.executable, '-m', 'scaling.fit', f'--results={path}',
       f'--out_dir={tmp_path}', '--bootstrap=50'],
      cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  assert 'law form: multiplicative' in result.stdout
  fit = json.loads((tmp_path / 'fit.json').read_text())
  assert fit['joint']['form'] == 'multiplicative'
  errors = fit['law_forms']['selection_errors']
  assert errors['multiplicative'] < errors['additive']
  for name, truth in (('alpha', TRUTH[3]), ('beta', TRUTH[4])):
    assert fit['joint'][name]['estimate'] == pytest.approx(truth, abs=0.03)
  # Both forms were checked on the hold-out; the report says which was used.
  held = fit['law_forms']['holdout_mean_abs_rel_error']
  assert held['multiplicative'] == fit['holdout']['mean_abs_rel_error']
  assert held['multiplicative'] < held['additive']
  text = (tmp_path / 'REPORT.md').read_text()
  assert '| multiplicative (chosen) |' in text
  assert 'L(N, D) = (E + B/D^β)(1 + A/N^α)' in text
