"""The scaling report: REPORT.md rendered from `templates/REPORT.md` and the fitted results.

Python gathers the numbers (with their intervals) into plain dicts; the
template lays them out. Nothing in the report is typed by hand.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import jax
import jinja2
import numpy as np

from scaling import analysis, beyond, fitting, laws, plots, runs as runs_lib
from scaling.runs import Runs

# Published fits of the same functional form, cited in the report.
LITERATURE = {
    'Besiroglu et al. (2024), Huber': {
        'E': 1.8172, 'A': 478.0, 'B': 2144.0, 'alpha': 0.3473,
        'beta': 0.3672},
    'Besiroglu et al. (2024), MLE': {
        'E': 1.8172, 'A': 482.01, 'B': 2085.43, 'alpha': 0.3478,
        'beta': 0.3658},
    'Hoffmann et al. (2022), eq. 10': {
        'E': 1.69, 'A': 406.4, 'B': 410.7, 'alpha': 0.34, 'beta': 0.28},
}
SYMBOLS = {'alpha': 'α', 'beta': 'β'}
# An exponent counts as determined when its interval is narrower than this
# either side (the scaling issue's bar).
PINNED = 0.2

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / 'templates'),
    autoescape=jinja2.select_autoescape(['html']), undefined=jinja2.StrictUndefined,
    trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
_ENV.filters['g4'] = lambda value: f'{value:.4g}'
_ENV.filters['symbol'] = lambda name: SYMBOLS.get(name, name)


def _diagnostics(result: analysis.LawResult) -> list[str]:
  fit, boot = result.fit, result.boot
  share = lambda status: f'{np.mean(boot.statuses == status):.0%}'
  return [
      f'Best of {fit.num_starts} L-BFGS starts on {fit.num_points} runs:'
      f' {analysis.status_text(fit)}; gradient norm {fit.grad_norm:.2g}, mean'
      f' Huber loss {fit.objective:.3g}.',
      f'Bootstrap: {len(boot.thetas)} resamples × {boot.num_starts} start(s);'
      f' {share(laws.CONVERGED)} converged, {share(laws.STALLED)} stopped'
      f' decreasing, {share(laws.ITERATION_LIMIT)} hit the iteration limit.',
      f'Time: fit {fit.seconds:.1f} s, bootstrap {boot.seconds:.1f} s'
      ' (JIT compilation included).',
  ]


def law_context(result: analysis.LawResult | str) -> dict:
  """A fitted law's parameter rows and diagnostics, or why it was skipped."""
  if isinstance(result, str):
    return {'skipped': result}
  return {'skipped': None, 'title': result.title,
          'parameters': [{'name': name, 'estimate': estimate, 'low': low,
                          'high': high}
                         for name, (estimate, low, high)
                         in result.parameters().items()],
          'diagnostics': _diagnostics(result)}


def allocation_context(runs: Runs, joint: analysis.LawResult) -> dict:
  """N*(C) and D*(C) with bootstrap intervals, C = k N^p D fitted on the runs."""
  budgets = analysis.compute_budgets(runs)
  k, p = fitting.flops_per_token_law(runs.n_params, runs.flops, runs.tokens)
  form = joint.fit.form
  estimate = fitting.compute_optimal(joint.fit.theta, budgets, k, p, form)
  samples = fitting.compute_optimal(joint.boot.thetas, budgets, k, p, form)

  def with_ci(key, column=None):
    point, spread = estimate[key], samples[key]
    if column is not None:
      point, spread = point[column], spread[:, column]
    low, high = fitting.interval(spread, analysis.CI_LEVEL)
    return {'estimate': float(point), 'low': float(low), 'high': float(high)}

  context = {'k': k, 'p': p, 'defined': not np.isnan(estimate['a'])}
  if context['defined']:
    context.update(
        a=with_ci('a'), b=with_ci('b'),
        undefined=int(np.isnan(samples['a']).sum()),
        resamples=len(samples['a']),
        rows=[{'budget': budget, 'n': with_ci('n_opt', column),
               'd': with_ci('d_opt', column),
               'ratio': estimate['d_opt'][column] / estimate['n_opt'][column]}
              for column, budget in enumerate(budgets)])
  return context


def holdout_context(holdout: analysis.Holdout | str) -> dict:
  if isinstance(holdout, str):
    return {'skipped': holdout}
  error = holdout.relative_error
  absolute = np.abs(holdout.predicted - holdout.held.loss)
  return {
      'skipped': None, 'num_train': len(holdout.train.loss),
      'num_held': len(holdout.held.loss),
      'rows': [{'n': n, 'd': d, 'c': c, 'actual': actual,
                'predicted': predicted, 'rel': rel}
               for n, d, c, actual, predicted, rel in zip(
                   holdout.held.n_params, holdout.held.tokens,
                   holdout.held.flops, holdout.held.loss, holdout.predicted,
                   error)],
      'mean_abs': absolute.mean(), 'max_abs': absolute.max(),
      'mean_rel': np.abs(error).mean(), 'max_rel': np.abs(error).max()}


def law_form_context(joint: analysis.LawResult,
                     choice: analysis.FormChoice | str | None,
                     holdouts: dict[str, analysis.Holdout | str]) -> dict:
  """The joint law's form; how it was chosen, why it could not be (str), or
  neither (None: given); and every form's hold-out."""
  chosen = isinstance(choice, analysis.FormChoice)
  return {'form': joint.fit.form, 'chosen': chosen,
          'not_chosen': choice if isinstance(choice, str) else None,
          'errors': choice.errors if chosen else {},
          'num_train': choice.num_train if chosen else 0,
          'num_held': choice.num_held if chosen else 0,
          'holdouts': {form: holdout_context(h)
                       for form, h in holdouts.items()}}


def chinchilla_context(chinchilla: analysis.LawResult | None) -> dict | None:
  if chinchilla is None:
    return None
  return {**law_context(chinchilla), 'points': chinchilla.fit.num_points,
          'dropped': runs_lib.CHINCHILLA_DROPPED, 'literature': LITERATURE,
          'n_decades': runs_lib.decades(chinchilla.runs.n_params),
          'd_decades': runs_lib.decades(chinchilla.runs.tokens)}


def exponents_context(joint: analysis.LawResult) -> list[dict]:
  """α and β with half their interval's width, and whether the interval
  excludes 0 and spans less than ±PINNED."""
  parameters, out = joint.parameters(), []
  for name in ('alpha', 'beta'):
    estimate, low, high = parameters[name]
    half = (high - low) / 2
    out.append({'name': name, 'estimate': estimate, 'low': low, 'high': high,
                'half_width': half, 'pinned': low > 0 and half < PINNED})
  return out


def write_report(out_dir: Path, runs: Runs, joint: analysis.LawResult,
                 single: dict[str, analysis.LawResult | str],
                 holdouts: dict[str, analysis.Holdout | str],
                 chinchilla: analysis.LawResult | None, command: str,
                 predictions: list[dict] = (),
                 targets: list[float] = (),
                 choice: analysis.FormChoice | str | None = None) -> Path:
  """Writes out_dir/REPORT.md (and its figures) from the fitted results.

  `holdouts` maps law forms to their hold-out checks and must hold the joint
  law's; `choice` says how that form was chosen, if it was. `command` is the
  command line that produced them, quoted in the report.
  """
  form = joint.fit.form
  holdout = holdouts[form]
  figures = plots.make_plots(runs, joint, holdout, out_dir)
  k, p = fitting.flops_per_token_law(runs.n_params, runs.flops, runs.tokens)
  targets = beyond.target_losses(list(targets), joint.fit.theta, k, p, form)
  order = np.lexsort((runs.tokens, runs.n_params))
  text = _ENV.get_template('REPORT.md').render(
      command=command, date=datetime.date.today(),
      device=jax.devices()[0].device_kind, cpu_count=os.cpu_count(),
      ci=f'{analysis.CI_LEVEL:.0%}',
      runs=[{'n': runs.n_params[i], 'd': runs.tokens[i], 'c': runs.flops[i],
             'six_nd': 6 * runs.n_params[i] * runs.tokens[i],
             'loss': runs.loss[i], 'record': runs.records[i]} for i in order],
      joint=law_context(joint),
      single=[{'title': title, **law_context(result)}
              for title, result in single.items()],
      allocation=allocation_context(runs, joint),
      holdout=holdout_context(holdout),
      law_form=law_form_context(joint, choice, holdouts),
      figures=[{'title': title, 'path': path.relative_to(out_dir)}
               for title, path in figures.items()],
      chinchilla=chinchilla_context(chinchilla),
      predictions=list(predictions), targets=targets,
      trained=runs.num_trained(),
      min_steps=min((r['steps'] for r in runs.records if 'steps' in r),
                    default=None),
      r_star=beyond.R_STAR, n_decades=runs_lib.decades(runs.n_params),
      d_decades=runs_lib.decades(runs.tokens),
      exponents=exponents_context(joint),
      pinned=PINNED)
  report = out_dir / 'REPORT.md'
  report.write_text(text, encoding='utf-8')
  (out_dir / 'fit.json').write_text(json.dumps(
      {**fit_summary(runs, joint, holdouts, chinchilla, choice),
       'predictions': list(predictions), 'targets': targets},
      indent=1) + '\n')
  return report


def _parameters(result: analysis.LawResult) -> dict:
  """name -> {'estimate', 'ci95': [low, high]} of a law's parameters."""
  return {name: {'estimate': estimate, 'ci95': [low, high]}
          for name, (estimate, low, high) in result.parameters().items()}


def fit_summary(runs: Runs, joint: analysis.LawResult,
                holdouts: dict[str, analysis.Holdout | str],
                chinchilla: analysis.LawResult | None,
                choice: analysis.FormChoice | str | None) -> dict:
  """fit.json: the numbers of REPORT.md a program would read."""
  held = holdout_context(holdouts[joint.fit.form])
  if not held['skipped']:
    held = {'num_train': held['num_train'], 'num_held': held['num_held'],
            'mean_abs_rel_error': float(held['mean_rel']),
            'max_abs_rel_error': float(held['max_rel']),
            'runs': [{key: float(row[key]) for key in row}
                     for row in held['rows']]}
  return {'num_runs': len(runs.loss),
          'num_training_runs': runs.num_trained(),
          'n_decades': runs_lib.decades(runs.n_params),
          'd_decades': runs_lib.decades(runs.tokens),
          'joint': {**_parameters(joint), 'form': joint.fit.form,
                    'status': analysis.status_text(joint.fit)},
          'holdout': held,
          # How the form was chosen, and what each form held out at.
          'law_forms': {
              'selection_errors': (choice.errors if isinstance(
                  choice, analysis.FormChoice) else None),
              'holdout_mean_abs_rel_error': {
                  form: (None if isinstance(h, str) else
                         float(np.abs(h.relative_error).mean()))
                  for form, h in holdouts.items()}},
          'chinchilla': chinchilla and {
              **_parameters(chinchilla),
              'published': LITERATURE}}
