"""Fits scaling laws to a sweep's results and writes REPORT.md with plots.

  python -m scaling.fit --results=runs/scaling/results.jsonl [--out_dir=DIR] \
      [--chinchilla=../shared/data/chinchilla_fig4_points.csv]
  python -m scaling.fit --chinchilla=../shared/data/chinchilla_fig4_points.csv

With --results it fits L(N) at the largest D, L(D) at the largest N and the
joint L(N, D), bootstraps all three, derives the compute-optimal allocation,
checks the joint law on the held-out largest runs, and writes REPORT.md and
figures/ into --out_dir. With --chinchilla the same fitter runs on the
Chinchilla points: alone it prints the fit, beside --results it also adds a
comparison section to the report.
"""

from __future__ import annotations

from collections.abc import Sequence
import csv
import dataclasses
import datetime
import json
import math
import os
from pathlib import Path
import sys

from absl import app
from absl import flags
from absl import logging
import jax
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from scaling import laws

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
    'Fraction of runs, largest N*D first, held out.',
    lower_bound=0.0,
    upper_bound=1.0,
)
_BOOTSTRAP = flags.DEFINE_integer(
    'bootstrap', 1000, 'Bootstrap resamples per law.', lower_bound=1
)
_BOOTSTRAP_SEED = flags.DEFINE_integer(
    'bootstrap_seed', 0, 'Seed of the bootstrap resampling.'
)

# results.jsonl fields the fit reads; the report shows a few more if present.
N_FIELD, D_FIELD, LOSS_FIELD = 'n_params', 'tokens', 'best_val_loss'
# A run is "at the largest D" (or N) if within this fraction of the largest.
SLICE_RTOL = 0.05
# Besiroglu et al. (2024) drop the 5 highest losses, leaving 240 points.
CHINCHILLA_DROPPED = 5
CI_LEVEL = 0.95
MAX_CURVES = 6  # Fitted curves per plot; more groups are merged into bins.

# Published fits of the same functional form, cited in the report.
LITERATURE = {
    'Besiroglu et al. (2024), Huber': {
        'E': 1.8172,
        'A': 478.0,
        'B': 2144.0,
        'alpha': 0.3473,
        'beta': 0.3672,
    },
    'Besiroglu et al. (2024), MLE': {
        'E': 1.8172,
        'A': 482.01,
        'B': 2085.43,
        'alpha': 0.3478,
        'beta': 0.3658,
    },
    'Hoffmann et al. (2022), eq. 10': {
        'E': 1.69,
        'A': 406.4,
        'B': 410.7,
        'alpha': 0.34,
        'beta': 0.28,
    },
}
SYMBOLS = {'alpha': 'α', 'beta': 'β'}


@dataclasses.dataclass(frozen=True)
class Runs:
  """Training runs: N, D and L, each [runs]."""

  source: str
  n_params: np.ndarray  # Non-embedding parameters N.
  tokens: np.ndarray  # Training tokens D.
  loss: np.ndarray  # Best validation loss L.
  records: list[dict]  # The rows as read, for the report's table.

  def subset(self, mask: np.ndarray) -> 'Runs':
    return Runs(
        self.source,
        self.n_params[mask],
        self.tokens[mask],
        self.loss[mask],
        [r for r, keep in zip(self.records, mask) if keep],
    )

  def log_x(self, *names: str) -> np.ndarray:
    """log of the named columns ("n_params", "tokens"), [runs, len(names)]."""
    return np.log(np.stack([getattr(self, name) for name in names], axis=1))


def _positive(value, where: str, field: str) -> float:
  """value as a float, or an error naming where it came from."""
  if isinstance(value, str):
    try:
      value = float(value)
    except ValueError:
      pass
  if (
      isinstance(value, bool)
      or not isinstance(value, (int, float))
      or not math.isfinite(value)
      or value <= 0
  ):
    raise laws.ScalingFitError(
        f'{where}: field {field!r} must be a positive number, got {value!r}'
    )
  return float(value)


def load_results(path: str) -> Runs:
  """Reads results.jsonl: one run per line, each with N, D and L fields."""
  records = []
  with open(path) as f:
    for line_number, line in enumerate(f, start=1):
      if not line.strip():
        continue
      where = f'{path}:{line_number}'
      try:
        record = json.loads(line)
      except json.JSONDecodeError as e:
        raise laws.ScalingFitError(f'{where}: not valid JSON ({e.msg})') from e
      if not isinstance(record, dict):
        raise laws.ScalingFitError(f'{where}: expected a JSON object')
      for field in (N_FIELD, D_FIELD, LOSS_FIELD):
        if field not in record:
          raise laws.ScalingFitError(f'{where}: missing field {field!r}')
        _positive(record[field], where, field)
      records.append(record)
  if not records:
    raise laws.ScalingFitError(f'{path}: no runs')
  column = lambda field: np.array([float(r[field]) for r in records])
  return Runs(
      path, column(N_FIELD), column(D_FIELD), column(LOSS_FIELD), records
  )


def load_chinchilla(path: str) -> Runs:
  """Reads the Chinchilla CSV (Model Size, Training FLOP, loss); D = C/(6N)."""
  with open(path, newline='') as f:
    rows = list(csv.DictReader(f))
  columns = {'n': 'Model Size', 'flops': 'Training FLOP', 'loss': 'loss'}
  missing = [c for c in columns.values() if not rows or c not in rows[0]]
  if missing:
    raise laws.ScalingFitError(f'{path}: missing column(s) {missing}')
  values = {
      key: np.array(
          [
              _positive(row[name], f'{path}:{i + 2}', name)
              for i, row in enumerate(rows)
          ]
      )
      for key, name in columns.items()
  }
  keep = np.argsort(values['loss'])[: len(rows) - CHINCHILLA_DROPPED]
  n, flops, loss = (values[key][keep] for key in ('n', 'flops', 'loss'))
  return Runs(path, n, flops / (6.0 * n), loss, [{} for _ in keep])


@dataclasses.dataclass(frozen=True)
class LawResult:
  """A law fitted to `runs`, with its bootstrap."""

  title: str
  runs: Runs
  coefficient_names: tuple[str, ...]
  exponent_names: tuple[str, ...]
  fit: laws.Fit
  boot: laws.Bootstrap

  def parameters(self) -> dict[str, tuple[float, float, float]]:
    """name -> (estimate, CI low, CI high)."""
    estimate = laws.named(
        self.fit.theta, self.coefficient_names, self.exponent_names
    )
    samples = laws.named(
        self.boot.thetas, self.coefficient_names, self.exponent_names
    )
    return {
        name: (
            float(estimate[name]),
            *map(float, laws.interval(samples[name], CI_LEVEL)),
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
) -> LawResult:
  """Fits and bootstraps the law in `variables` (Runs column names) to runs."""
  log_x, log_loss = runs.log_x(*variables), np.log(runs.loss)
  try:
    fit = laws.fit_law(log_x, log_loss)
  except laws.ScalingFitError as e:
    raise laws.ScalingFitError(f'{runs.source}: {title}: {e}') from e
  if fit.status != laws.CONVERGED:
    logging.warning('%s: best start %s', title, _status(fit))
  boot = laws.bootstrap(log_x, log_loss, fit, num_resamples, seed)
  logging.info(
      '%s: fit %.1f s, bootstrap %.1f s', title, fit.seconds, boot.seconds
  )
  return LawResult(
      title, runs, tuple(coefficient_names), tuple(exponent_names), fit, boot
  )


def fit_joint(runs: Runs, num_resamples: int, seed: int) -> LawResult:
  return fit_and_bootstrap(
      'L(N, D)',
      runs,
      ('n_params', 'tokens'),
      ('A', 'B'),
      ('alpha', 'beta'),
      num_resamples,
      seed,
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
    except laws.ScalingFitError as e:
      logging.warning('skipped: %s', e)
      results[title] = f'Skipped: {e}.'
  return results


@dataclasses.dataclass(frozen=True)
class Holdout:
  """The joint law fitted without the largest runs, predicting them ([held])."""

  fit: laws.Fit
  train: Runs
  held: Runs
  predicted: np.ndarray

  @property
  def relative_error(self) -> np.ndarray:
    return (self.predicted - self.held.loss) / self.held.loss


def holdout_validation(runs: Runs, fraction: float) -> Holdout:
  """Holds out the ceil(fraction * runs) runs with the largest N*D."""
  num_held = max(1, math.ceil(fraction * len(runs.loss)))
  order = np.argsort(runs.n_params * runs.tokens)
  held = np.zeros(len(order), bool)
  held[order[len(order) - num_held :]] = True
  train, test = runs.subset(~held), runs.subset(held)
  try:
    fit = laws.fit_law(train.log_x('n_params', 'tokens'), np.log(train.loss))
  except laws.ScalingFitError as e:
    raise laws.ScalingFitError(
        f'{runs.source}: holding out {num_held} runs: {e}'
    ) from e
  return Holdout(
      fit,
      train,
      test,
      laws.predict(fit.theta, test.log_x('n_params', 'tokens')),
  )


def compute_budgets(runs: Runs) -> np.ndarray:
  """Powers of ten from the sweep's smallest C = 6ND to 100x its largest."""
  log_c = np.log10(6.0 * runs.n_params * runs.tokens)
  decades = np.arange(math.floor(log_c.min()), math.ceil(log_c.max()) + 3)
  return 10.0 ** decades[:: max(1, math.ceil(len(decades) / 6))]


def _groups(values: np.ndarray) -> list[np.ndarray]:
  """Masks [runs] grouping values within SLICE_RTOL, at most MAX_CURVES."""
  order = np.argsort(values)
  starts = [0] + [
      i
      for i in range(1, len(order))
      if values[order[i]] > values[order[i - 1]] * (1.0 + SLICE_RTOL)
  ]
  if len(starts) > MAX_CURVES:
    starts = [
        starts[i]
        for i in np.linspace(0, len(starts) - 1, MAX_CURVES).astype(int)
    ]
    starts = sorted(set(starts))
  masks = []
  for begin, end in zip(starts, starts[1:] + [len(order)]):
    mask = np.zeros(len(values), bool)
    mask[order[begin:end]] = True
    masks.append(mask)
  return masks


def _plot_loss_against(
    ax, runs: Runs, joint: laws.Fit, variable: str, other: str
):
  """Loss against `variable`, with the joint law at each group of `other`."""
  x, other_values = getattr(runs, variable), getattr(runs, other)
  grid = np.geomspace(x.min(), x.max(), 100)
  groups = _groups(other_values)
  colors = plt.cm.viridis(np.linspace(0.0, 0.9, len(groups)))
  symbol = {'n_params': 'N', 'tokens': 'D'}
  for mask, color in zip(groups, colors):
    level = float(np.median(other_values[mask]))
    ax.scatter(x[mask], runs.loss[mask], color=color, s=18)
    columns = {variable: grid, other: np.full_like(grid, level)}
    log_x = np.log(np.stack([columns['n_params'], columns['tokens']], axis=1))
    ax.plot(
        grid,
        laws.predict(joint.theta, log_x),
        color=color,
        label=f'{symbol[other]} ≈ {level:.3g}',
    )
  ax.set(
      xscale='log',
      yscale='log',
      xlabel=symbol[variable],
      ylabel='best val loss',
  )
  ax.legend(fontsize=7)


def make_plots(
    runs: Runs, joint: LawResult, holdout: Holdout | str, out_dir: Path
) -> dict[str, Path]:
  """Writes the PNGs into out_dir/figures; returns title -> path."""
  figures = out_dir / 'figures'
  figures.mkdir(parents=True, exist_ok=True)
  paths = {}

  def save(fig, name: str, title: str):
    fig.suptitle(title)
    fig.tight_layout()
    paths[title] = figures / name
    fig.savefig(paths[title], dpi=120)
    plt.close(fig)

  for name, variable, other, title in (
      ('loss_vs_n.png', 'n_params', 'tokens', 'Loss vs N, joint law at each D'),
      ('loss_vs_d.png', 'tokens', 'n_params', 'Loss vs D, joint law at each N'),
  ):
    fig, ax = plt.subplots(figsize=(6, 4))
    _plot_loss_against(ax, runs, joint.fit, variable, other)
    save(fig, name, title)
  predicted = laws.predict(joint.fit.theta, runs.log_x('n_params', 'tokens'))
  fig, ax = plt.subplots(figsize=(6, 4))
  points = ax.scatter(
      6.0 * runs.n_params * runs.tokens,
      runs.loss / predicted - 1.0,
      c=np.log10(runs.n_params),
      s=18,
  )
  fig.colorbar(points, label='log10 N')
  ax.axhline(0.0, color='gray', lw=0.8)
  ax.set(xscale='log', xlabel='C = 6ND', ylabel='L / L̂ − 1')
  save(fig, 'residuals.png', 'Relative residuals of the joint law')
  if isinstance(holdout, Holdout):
    fitted = laws.predict(
        holdout.fit.theta, holdout.train.log_x('n_params', 'tokens')
    )
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(
        holdout.train.loss, fitted, color='lightgray', s=14, label='fitted on'
    )
    ax.scatter(
        holdout.held.loss, holdout.predicted, color='C3', s=22, label='held out'
    )
    limits = [
        min(runs.loss.min(), holdout.predicted.min()),
        max(runs.loss.max(), holdout.predicted.max()),
    ]
    ax.plot(limits, limits, color='black', lw=0.8)
    ax.set(xlabel='actual loss', ylabel='predicted loss')
    ax.legend()
    save(fig, 'holdout.png', 'Held-out largest runs')
  return paths


def _format(value: float) -> str:
  return f'{value:.4g}'


def _parameter_table(result: LawResult) -> list[str]:
  level = f'{CI_LEVEL:.0%}'
  lines = [f'| parameter | estimate | {level} CI |', '|---|---|---|']
  for name, (estimate, low, high) in result.parameters().items():
    lines.append(
        f'| {SYMBOLS.get(name, name)} | {_format(estimate)} |'
        f' [{_format(low)}, {_format(high)}] |'
    )
  return lines


def _status(fit: laws.Fit) -> str:
  if fit.status == laws.CONVERGED:
    return f'converged after {fit.num_iterations} iterations'
  if fit.status == laws.STALLED:
    return (
        f'stopped decreasing after {fit.num_iterations} iterations, short of'
        f' gradient norm {laws.GTOL:.0e}'
    )
  return f'**did not converge** in {fit.num_iterations} iterations'


def _diagnostics(result: LawResult) -> list[str]:
  fit, boot = result.fit, result.boot
  share = lambda status: f'{np.mean(boot.statuses == status):.0%}'
  return [
      f'- Best of {fit.num_starts} L-BFGS starts on {fit.num_points} runs:'
      f' {_status(fit)}; gradient norm {fit.grad_norm:.2g}, mean Huber loss'
      f' {fit.objective:.3g}.',
      f'- Bootstrap: {len(boot.thetas)} resamples × {boot.num_starts} start(s);'
      f' {share(laws.CONVERGED)} converged, {share(laws.STALLED)} stopped'
      f' decreasing, {share(laws.ITERATION_LIMIT)} hit the iteration limit.',
      f'- Time: fit {fit.seconds:.1f} s, bootstrap {boot.seconds:.1f} s'
      ' (JIT compilation included).',
  ]


def _law_section(result: LawResult | str) -> list[str]:
  if isinstance(result, str):
    return [result, '']
  return _parameter_table(result) + [''] + _diagnostics(result) + ['']


def _compute_optimal_section(
    joint: LawResult, budgets: np.ndarray
) -> list[str]:
  estimate = laws.compute_optimal(joint.fit.theta, budgets)
  samples = laws.compute_optimal(joint.boot.thetas, budgets)
  level = f'{CI_LEVEL:.0%}'

  def with_ci(key, column=None):
    point, spread = estimate[key], samples[key]
    if column is not None:
      point, spread = point[column], spread[:, column]
    low, high = laws.interval(spread, CI_LEVEL)
    return f'{_format(point)} [{_format(low)}, {_format(high)}]'

  lines = [
      'With C = 6ND, N\\*(C) = G (C/6)^a and D\\*(C) = G⁻¹ (C/6)^b, where'
      ' a = β/(α+β), b = α/(α+β) and G = (αA/(βB))^(1/(α+β)).',
      '',
  ]
  if np.isnan(estimate['a']):
    return lines + ['Undefined: the fitted α or β is not positive.', '']
  lines += [f"- a = {with_ci('a')}, b = {with_ci('b')} ({level} bootstrap CI)."]
  undefined = int(np.isnan(samples['a']).sum())
  if undefined:
    lines.append(
        f"- {undefined} of {len(samples['a'])} resamples have a non-positive"
        ' exponent and are left out of the intervals.'
    )
  lines += [
      '',
      f'| C (FLOPs) | N\\* [{level} CI] | D\\* [{level} CI] | D\\*/N\\* |',
      '|---|---|---|---|',
  ]
  for column, budget in enumerate(budgets):
    ratio = estimate['d_opt'][column] / estimate['n_opt'][column]
    lines.append(
        f"| {budget:.0e} | {with_ci('n_opt', column)} |"
        f" {with_ci('d_opt', column)} | {_format(ratio)} |"
    )
  return lines + ['']


def _holdout_section(holdout: Holdout | str) -> list[str]:
  if isinstance(holdout, str):
    return [holdout, '']
  error = holdout.relative_error
  lines = [
      f'The joint law refitted on the {len(holdout.train.loss)} smallest runs'
      f' (by N·D) predicts the {len(holdout.held.loss)} largest:',
      '',
      '| N | D | actual loss | predicted | abs error | rel error |',
      '|---|---|---|---|---|---|',
  ]
  for n, d, actual, predicted, rel in zip(
      holdout.held.n_params,
      holdout.held.tokens,
      holdout.held.loss,
      holdout.predicted,
      error,
  ):
    lines.append(
        f'| {n:.3g} | {d:.3g} | {actual:.4f} | {predicted:.4f} |'
        f' {predicted - actual:+.4f} | {rel:+.2%} |'
    )
  absolute = np.abs(holdout.predicted - holdout.held.loss)
  return lines + [
      '',
      f'Mean absolute error {absolute.mean():.4f} (max {absolute.max():.4f});'
      f' mean absolute relative error {np.abs(error).mean():.2%}'
      f' (max {np.abs(error).max():.2%}).',
      '',
  ]


def _runs_table(runs: Runs) -> list[str]:
  lines = [
      '| N | N total | D | C = 6ND | best val loss | best val acc |'
      ' wall time (s) |',
      '|---|---|---|---|---|---|---|',
  ]
  order = np.lexsort((runs.tokens, runs.n_params))
  for i in order:
    record = runs.records[i]
    cell = lambda key, fmt: format(record[key], fmt) if key in record else '–'
    lines.append(
        f"| {runs.n_params[i]:.3g} | {cell('n_params_total', '.3g')} |"
        f' {runs.tokens[i]:.3g} | {6 * runs.n_params[i] * runs.tokens[i]:.3g} |'
        f" {runs.loss[i]:.4f} | {cell('best_val_accuracy', '.4f')} |"
        f" {cell('wall_time_s', '.0f')} |"
    )
  return lines + ['']


def _decades(values: np.ndarray) -> float:
  return float(np.log10(values.max() / values.min()))


def _chinchilla_section(chinchilla: LawResult | None) -> list[str]:
  if chinchilla is None:
    return [
        'Not run: pass'
        ' `--chinchilla=../shared/data/chinchilla_fig4_points.csv`.',
        '',
    ]
  ours = chinchilla.parameters()
  sources = list(LITERATURE)
  lines = [
      f'The same fitter on the {chinchilla.fit.num_points} Chinchilla Figure 4'
      ' points (Hoffmann et al. 2022, as extracted by Besiroglu et al. 2024;'
      f' the {CHINCHILLA_DROPPED} highest losses dropped, D = C/(6N)), beside'
      ' the published fits of the same form:',
      '',
      f'| parameter | ours [{CI_LEVEL:.0%} CI] | ' + ' | '.join(sources) + ' |',
      '|---' * (2 + len(sources)) + '|',
  ]
  for name, (estimate, low, high) in ours.items():
    published = ' | '.join(_format(LITERATURE[s][name]) for s in sources)
    lines.append(
        f'| {SYMBOLS.get(name, name)} | {_format(estimate)}'
        f' [{_format(low)}, {_format(high)}] | {published} |'
    )
  spans = (
      f'The Chinchilla points span {_decades(chinchilla.runs.n_params):.1f}'
      f' decades of N and {_decades(chinchilla.runs.tokens):.1f} of D.'
  )
  return lines + ['', *_diagnostics(chinchilla), '', spans, '']


SMALL_SCALE = """\
These exponents describe this sweep, not language models at large. Each run
trains one epoch, so D counts distinct reviews seen once; varying D means
training on a nested fraction of IMDB's train split (what is left after our
validation and test hold-outs). D cannot grow past that split without repeating
reviews, and Muennighoff et al. (2023, "Scaling Data-Constrained Language
Models") find repeated tokens worth nearly as much as fresh ones for about 4
epochs and rapidly less after that, so extrapolating the D term beyond one
epoch of this data overstates what more training buys. At the small end the
runs take few optimizer steps at a learning rate tuned for the full split, so
they are partly optimisation-limited rather than data-limited. That steepens
the fitted D term (a large β) and blurs the N term, and E is the loss floor of
this finite task, above its irreducible loss. The sweep spans
{n_decades:.1f} decades of N and {d_decades:.1f} of D, so α and β are loosely
pinned, as their intervals show, and compute-optimal allocations far beyond the
sweep inherit that spread. The loss is a two-class cross-entropy rather than a
language model's per-token loss, so none of these numbers is comparable with
Chinchilla's."""

METHOD = """\
Laws of the form L = E + A/N^α + B/D^β are fitted the Chinchilla approach-3
way: log L = LSE(a − α log N, b − β log D, e), Huber loss (δ = 1e-3) on log L,
L-BFGS from a grid of starts (e ∈ {−1, −0.5, …, 1}, a, b ∈ {0, 5, …, 25},
α, β ∈ {0, 0.5, …, 2}). L is the best validation loss, N the non-embedding
parameters, D the training tokens. Intervals are bootstrap percentiles over
runs resampled with replacement."""


def write_report(
    out_dir: Path,
    runs: Runs,
    joint: LawResult,
    single: dict[str, LawResult | str],
    holdout: Holdout | str,
    chinchilla: LawResult | None,
    command: str,
) -> Path:
  """Writes out_dir/REPORT.md (and its figures) from the fitted results.

  `command` is the command line that produced them, quoted in the report.
  """
  figures = make_plots(runs, joint, holdout, out_dir)
  lines = [
      '# Scaling laws for the sentiment sweep',
      '',
      f'Generated by `{command}` on {datetime.date.today()}'
      f' ({jax.devices()[0].device_kind}, {os.cpu_count()} CPU cores).'
      ' Do not edit by hand; rerun instead.',
      '',
      METHOD,
      '',
      f'## Runs ({len(runs.loss)})',
      '',
      *_runs_table(runs),
      '## Joint law L(N, D) = E + A/N^α + B/D^β',
      '',
      *_law_section(joint),
      '## Single-variable laws',
      '',
  ]
  for title, result in single.items():
    heading = result.title if isinstance(result, LawResult) else title
    lines += [f'### {heading}', '', *_law_section(result)]
  lines += [
      '## Compute-optimal allocation',
      '',
      *_compute_optimal_section(joint, compute_budgets(runs)),
      '## Held-out validation',
      '',
      *_holdout_section(holdout),
      '## Plots',
      '',
  ]
  for title, path in figures.items():
    lines += [f'![{title}]({path.relative_to(out_dir)})', '']
  lines += [
      '## Our fitter on the Chinchilla data',
      '',
      *_chinchilla_section(chinchilla),
      '## What small scale means for the exponents',
      '',
      SMALL_SCALE.format(
          n_decades=_decades(runs.n_params), d_decades=_decades(runs.tokens)
      ),
      '',
  ]
  report = out_dir / 'REPORT.md'
  report.write_text('\n'.join(lines), encoding='utf-8')
  return report


def fit_chinchilla(path: str, num_resamples: int, seed: int) -> LawResult:
  return dataclasses.replace(
      fit_joint(load_chinchilla(path), num_resamples, seed),
      title=f'Chinchilla L(N, D) from {path}',
  )


def _print_law(result: LawResult) -> None:
  print(result.title)
  print('\n'.join(_parameter_table(result) + _diagnostics(result)))


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
    runs = load_results(_RESULTS.value) if _RESULTS.value else None
    chinchilla = None
    if _CHINCHILLA.value:
      chinchilla = fit_chinchilla(_CHINCHILLA.value, resamples, seed)
      _print_law(chinchilla)
    if runs:
      joint = fit_joint(runs, resamples, seed)
      _print_law(joint)
      single = fit_single_variable(runs, resamples, seed)
      try:
        holdout = holdout_validation(runs, _HOLDOUT_FRACTION.value)
      except laws.ScalingFitError as e:
        holdout = f'Skipped: {e}.'
      command = ' '.join(['python -m scaling.fit', *sys.argv[1:]])
      report = write_report(
          Path(_OUT_DIR.value),
          runs,
          joint,
          single,
          holdout,
          chinchilla,
          command,
      )
      print(f'wrote {report}')
  except (laws.ScalingFitError, OSError) as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  app.run(main)
