"""The analyses of a set of runs: joint and single-variable laws, hold-out, the law's form.

Each returns plain results (`LawResult`, `Holdout`, `FormChoice`) that
`plots` draws and `report` renders; nothing here writes files.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import math

from absl import logging
import numpy as np

from scaling import fitting, laws, runs as runs_lib
from scaling.laws import ScalingFitError
from scaling.runs import Runs

CI_LEVEL = 0.95
# A run is "at the largest D" (or N) if within this fraction of the largest.
SLICE_RTOL = 0.05


@dataclasses.dataclass(frozen=True)
class LawResult:
  """A law fitted to `runs`, with its bootstrap."""

  title: str
  runs: Runs
  coefficient_names: tuple[str, ...]
  exponent_names: tuple[str, ...]
  fit: fitting.Fit
  boot: fitting.Bootstrap

  def parameters(self) -> dict[str, tuple[float, float, float]]:
    """name -> (estimate, CI low, CI high)."""
    estimate = fitting.named(
        self.fit.theta, self.coefficient_names, self.exponent_names
    )
    samples = fitting.named(
        self.boot.thetas, self.coefficient_names, self.exponent_names
    )
    return {
        name: (
            float(estimate[name]),
            *map(float, fitting.interval(samples[name], CI_LEVEL)),
        )
        for name in estimate
    }


def fit_and_bootstrap(
    title: str,
    runs: Runs,
    variables: Sequence[str],
    coefficient_names: Sequence[str],
    exponent_names: Sequence[str],
    num_resamples: int,
    seed: int,
    form: str = 'additive',
) -> LawResult:
  """Fits and bootstraps the law in `variables` (Runs column names) to runs."""
  log_x, log_loss = runs.log_x(*variables), np.log(runs.loss)
  try:
    fit = fitting.fit_law(log_x, log_loss, form)
  except ScalingFitError as e:
    raise ScalingFitError(f'{runs.source}: {title}: {e}') from e
  if fit.status != laws.CONVERGED:
    logging.warning('%s: best start %s', title, status_text(fit))
  boot = fitting.bootstrap(log_x, log_loss, fit, num_resamples, seed)
  logging.info(
      '%s: fit %.1f s, bootstrap %.1f s', title, fit.seconds, boot.seconds
  )
  return LawResult(
      title, runs, tuple(coefficient_names), tuple(exponent_names), fit, boot
  )


def fit_joint(runs: Runs, num_resamples: int, seed: int,
              form: str = 'additive') -> LawResult:
  return fit_and_bootstrap(
      'L(N, D)',
      runs,
      ('n_params', 'tokens'),
      ('A', 'B'),
      ('alpha', 'beta'),
      num_resamples,
      seed,
      form,
  )


def at_largest(values: np.ndarray) -> np.ndarray:
  """Mask [runs] of values within SLICE_RTOL of the largest."""
  return values >= values.max() * (1.0 - SLICE_RTOL)


def fit_single_variable(
    runs: Runs, num_resamples: int, seed: int
) -> dict[str, LawResult | str]:
  """L(N) at the largest D and L(D) at the largest N, or why not (too few)."""
  results = {}
  for title, variable, held, coefficient, exponent in (
      ('L(N)', 'n_params', 'tokens', 'A', 'alpha'),
      ('L(D)', 'tokens', 'n_params', 'B', 'beta'),
  ):
    held_values = getattr(runs, held)
    slice_runs = runs.subset(at_largest(held_values))
    symbol = 'D' if held == 'tokens' else 'N'
    label = f'{title} at {symbol} ≈ {held_values.max():.3g}'
    try:
      results[title] = fit_and_bootstrap(
          label,
          slice_runs,
          (variable,),
          (coefficient,),
          (exponent,),
          num_resamples,
          seed,
      )
    except ScalingFitError as e:
      logging.warning('skipped: %s', e)
      results[title] = f'Skipped: {e}.'
  return results


@dataclasses.dataclass(frozen=True)
class Holdout:
  """The joint law fitted without the largest runs, predicting them ([held])."""

  fit: fitting.Fit
  train: Runs
  held: Runs
  predicted: np.ndarray

  @property
  def relative_error(self) -> np.ndarray:
    return (self.predicted - self.held.loss) / self.held.loss


def split_by_compute(runs: Runs, fraction: float) -> tuple[Runs, Runs]:
  """(the rest, the ceil(fraction * runs) runs of largest compute C)."""
  num_held = max(1, math.ceil(fraction * len(runs.loss)))
  order = np.argsort(runs.flops)
  held = np.zeros(len(order), bool)
  held[order[len(order) - num_held :]] = True
  return runs.subset(~held), runs.subset(held)


def holdout_validation(runs: Runs, fraction: float,
                       form: str = 'additive') -> Holdout:
  """Holds out the ceil(fraction * runs) runs with the largest compute C."""
  train, test = split_by_compute(runs, fraction)
  num_held = len(test.loss)
  try:
    fit = fitting.fit_law(train.log_x('n_params', 'tokens'),
                          np.log(train.loss), form)
  except ScalingFitError as e:
    raise ScalingFitError(
        f'{runs.source}: holding out {num_held} runs: {e}'
    ) from e
  return Holdout(
      fit,
      train,
      test,
      laws.predict(fit.theta, test.log_x('n_params', 'tokens'), form),
  )


@dataclasses.dataclass(frozen=True)
class FormChoice:
  """The law form chosen by forward validation inside the fit set."""

  form: str
  # form -> mean absolute relative error predicting the fit set's largest runs.
  errors: dict[str, float]
  num_train: int
  num_held: int


def select_form(runs: Runs, fraction: float) -> FormChoice:
  """Picks the form that best predicts the largest runs of the fit set.

  The fit set is `runs` without the runs the hold-out check keeps back (the
  `fraction` of largest compute); within it, each form is fitted on all but
  its own largest `fraction` and predicts those. The held-out runs play no
  part, so the hold-out check stays a check of the chosen form.
  """
  fit_set, _ = split_by_compute(runs, fraction)
  checks = {form: holdout_validation(fit_set, fraction, form)
            for form in laws.FORMS}
  errors = {form: float(np.abs(check.relative_error).mean())
            for form, check in checks.items()}
  some = checks[laws.FORMS[0]]
  return FormChoice(min(errors, key=errors.get), errors, len(some.train.loss),
                    len(some.held.loss))


def compute_budgets(runs: Runs) -> np.ndarray:
  """Powers of ten from the sweep's smallest compute C to 100x its largest."""
  log_c = np.log10(runs.flops)
  decades = np.arange(math.floor(log_c.min()), math.ceil(log_c.max()) + 3)
  return 10.0 ** decades[:: max(1, math.ceil(len(decades) / 6))]


def fit_chinchilla(path: str, num_resamples: int, seed: int) -> LawResult:
  return dataclasses.replace(
      fit_joint(runs_lib.load_chinchilla(path), num_resamples, seed),
      title=f'Chinchilla L(N, D) from {path}',
  )


def status_text(fit: fitting.Fit) -> str:
  if fit.status == laws.CONVERGED:
    return f'converged after {fit.num_iterations} iterations'
  if fit.status == laws.STALLED:
    return (
        f'stopped decreasing after {fit.num_iterations} iterations, short of'
        f' gradient norm {laws.GTOL:.0e}'
    )
  return f'**did not converge** in {fit.num_iterations} iterations'
