"""Fits scaling laws to a sweep's results and writes REPORT.md with plots.

  python -m scaling.fit --results=runs/scaling/results.jsonl [--out_dir=DIR] \
      [--chinchilla=../shared/data/chinchilla_fig4_points.csv]
  python -m scaling.fit --chinchilla=../shared/data/chinchilla_fig4_points.csv

With --results it chooses the joint law's form (`--law=auto`: the form that
best predicts the largest runs of the fit set), fits L(N) at the largest D,
L(D) at the largest N and the joint L(N, D), bootstraps all three, derives the compute-optimal allocation,
checks the joint law on the held-out largest runs, and writes REPORT.md,
fit.json (the fitted parameters with 95% intervals and the hold-out errors,
for programs) and figures/ into --out_dir. With --predict it also predicts
real runs' validation loss (`scaling.beyond`), and --target_loss gives the
compute-optimal N and D for chosen losses; --min_steps=S refits without the
runs of fewer than S optimizer steps. Runs of one point at several seeds are
fitted as their mean. With --chinchilla the same fitter runs on the
Chinchilla points: alone it prints the fit, beside --results it also adds a
comparison section to the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
import sys

from absl import app
from absl import flags

from scaling import analysis, beyond, laws, report, runs as runs_lib
from scaling.laws import ScalingFitError

_RESULTS = flags.DEFINE_string(
    'results', None, 'results.jsonl of a sweep, one JSON run per line.'
)
_OUT_DIR = flags.DEFINE_string(
    'out_dir', str(Path(__file__).parent), 'Where REPORT.md and figures/ go.'
)
_CHINCHILLA = flags.DEFINE_string(
    'chinchilla', None, 'Chinchilla Figure 4 points (CSV) to fit.'
)
_HOLDOUT_FRACTION = flags.DEFINE_float(
    'holdout_fraction',
    0.2,
    'Fraction of runs, largest compute first, held out.',
    lower_bound=0.0,
    upper_bound=1.0,
)
_LAW = flags.DEFINE_enum(
    'law', 'auto', ('auto',) + laws.FORMS, 'Form of the joint law: additive '
    '(Chinchilla\'s E + A/N^alpha + B/D^beta), multiplicative '
    '((E + B/D^beta)(1 + A/N^alpha)), or auto: the one with the lower error '
    'predicting the largest runs of the fit set, before the hold-out check.')
_MIN_STEPS = flags.DEFINE_integer(
    'min_steps', 0, 'Leave out runs of fewer optimizer steps than this: a '
    'sensitivity check, since the shortest runs are limited by optimisation '
    'as much as by D.', lower_bound=0)
_PREDICT = flags.DEFINE_list(
    'predict', [], 'Trained run directories (e.g. runs/base) whose validation '
    'loss, epoch by epoch, the joint law predicts in the report.')
_TARGET_LOSS = flags.DEFINE_list(
    'target_loss', ['0.3', '0.25'], 'Validation losses for which the report '
    'gives the compute-optimal N and D.')
_BOOTSTRAP = flags.DEFINE_integer(
    'bootstrap', 1000, 'Bootstrap resamples per law.', lower_bound=1
)
_BOOTSTRAP_SEED = flags.DEFINE_integer(
    'bootstrap_seed', 0, 'Seed of the bootstrap resampling.'
)


def _print_law(result: analysis.LawResult) -> None:
  context = report.law_context(result)
  print(result.title)
  for p in context['parameters']:
    print(f'  {report.SYMBOLS.get(p["name"], p["name"])} = '
          f'{p["estimate"]:.4g} [{p["low"]:.4g}, {p["high"]:.4g}]')
  for line in context['diagnostics']:
    print(f'  {line}')


def _choose_form(runs: runs_lib.Runs, fraction: float
                 ) -> tuple[str, analysis.FormChoice | str | None]:
  """--law's form, and how it was chosen: a FormChoice, why it could not be
  (str), or None where --law named it."""
  if _LAW.value != 'auto':
    return _LAW.value, None
  try:
    choice = analysis.select_form(runs, fraction)
  except ScalingFitError as e:
    # Too few runs to choose by: Chinchilla's form, and say why.
    reason = f'too few runs to choose by ({e})'
    print(f'law form: additive, {reason}')
    return 'additive', reason
  errors = ', '.join(f'{f} {e:.2%}' for f, e in choice.errors.items())
  print(f'law form: {choice.form} (forward validation, mean relative error:'
        f' {errors})')
  return choice.form, choice


def _holdout(runs: runs_lib.Runs, fraction: float, form: str
             ) -> analysis.Holdout | str:
  try:
    return analysis.holdout_validation(runs, fraction, form)
  except ScalingFitError as e:
    return f'Skipped: {e}.'


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not (_RESULTS.value or _CHINCHILLA.value):
    raise app.UsageError(
        'pass --results=results.jsonl and/or --chinchilla=points.csv'
    )
  resamples, seed = _BOOTSTRAP.value, _BOOTSTRAP_SEED.value
  try:
    # Read the sweep first so that bad input fails before any slow fit.
    runs = (runs_lib.load_results(_RESULTS.value, _MIN_STEPS.value)
            if _RESULTS.value else None)
    chinchilla = None
    if _CHINCHILLA.value:
      chinchilla = analysis.fit_chinchilla(_CHINCHILLA.value, resamples, seed)
      _print_law(chinchilla)
    if runs:
      fraction = _HOLDOUT_FRACTION.value
      form, choice = _choose_form(runs, fraction)
      joint = analysis.fit_joint(runs, resamples, seed, form)
      _print_law(joint)
      single = analysis.fit_single_variable(runs, resamples, seed)
      # Every form is checked on the hold-out when the rule chose among them,
      # so that the report shows what the choice gained or cost.
      chosen = isinstance(choice, analysis.FormChoice)
      holdouts = {checked: _holdout(runs, fraction, checked)
                  for checked in (laws.FORMS if chosen else (form,))}
      try:
        targets = [float(t) for t in _TARGET_LOSS.value]
      except ValueError:
        raise ScalingFitError(f'--target_loss={",".join(_TARGET_LOSS.value)}'
                              ' must be numbers, e.g. 0.3,0.25') from None
      predictions = beyond.predict_runs(joint.fit.theta, _PREDICT.value, form)
      command = ' '.join(['python -m scaling.fit', *sys.argv[1:]])
      path = report.write_report(Path(_OUT_DIR.value), runs, joint, single,
                                 holdouts, chinchilla, command, predictions,
                                 targets, choice)
      print(f'wrote {path}')
  except (ScalingFitError, OSError) as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  app.run(main)
