"""The scaling report's figures: loss against N and D with the joint law, residuals, hold-out.

Built with matplotlib's object API (`Figure`), which needs no GUI backend.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker
from matplotlib.figure import Figure
import numpy as np

from scaling import analysis, fitting, laws, runs as runs_lib
from scaling.runs import Runs

MAX_CURVES = 6  # Fitted curves per plot; more groups are merged into bins.


def _groups(values: np.ndarray) -> list[np.ndarray]:
  """Masks [runs] grouping values within analysis.SLICE_RTOL, at most MAX_CURVES."""
  order = np.argsort(values)
  starts = [0] + [
      i
      for i in range(1, len(order))
      if values[order[i]] > values[order[i - 1]] * (1.0 + analysis.SLICE_RTOL)
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
    ax, runs: Runs, joint: fitting.Fit, variable: str, other: str
):
  """Loss against `variable`, with the joint law at each group of `other`."""
  x, other_values = getattr(runs, variable), getattr(runs, other)
  grid = np.geomspace(x.min(), x.max(), 100)
  groups = _groups(other_values)
  colors = matplotlib.colormaps['viridis'](np.linspace(0.0, 0.9, len(groups)))
  symbol = {'n_params': 'N', 'tokens': 'D'}
  for mask, color in zip(groups, colors):
    level = float(np.median(other_values[mask]))
    ax.scatter(x[mask], runs.loss[mask], color=color, s=18)
    columns = {variable: grid, other: np.full_like(grid, level)}
    log_x = np.log(np.stack([columns['n_params'], columns['tokens']], axis=1))
    ax.plot(
        grid,
        laws.predict(joint.theta, log_x, joint.form),
        color=color,
        label=f'{symbol[other]} ≈ {level:.3g}',
    )
  ax.set(
      xscale='log',
      yscale='log',
      xlabel=symbol[variable],
      ylabel='best val loss',
  )
  # 1-2-5 ticks in engineering notation (200k, 1M): matplotlib's labelled
  # minor ticks (2×10^5, 3×10^5, ...) overlap one another, and so do 1-2-5
  # labels over more than ~3 decades, where powers of ten are enough.
  subs = (1, 2, 5) if runs_lib.decades(x) <= 3 else (1,)
  ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=subs))
  ax.xaxis.set_major_formatter(matplotlib.ticker.EngFormatter())
  ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
  # Outside the axes: every corner inside holds points.
  ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1.0))


def make_plots(
    runs: Runs, joint: analysis.LawResult, holdout: analysis.Holdout | str,
    out_dir: Path
) -> dict[str, Path]:
  """Writes the PNGs into out_dir/figures; returns title -> path."""
  figures = out_dir / 'figures'
  figures.mkdir(parents=True, exist_ok=True)
  paths = {}

  def save(fig: Figure, name: str, title: str):
    fig.suptitle(title)
    paths[title] = figures / name
    fig.savefig(paths[title], dpi=120)

  for name, variable, other, title in (
      ('loss_vs_n.png', 'n_params', 'tokens', 'Loss vs N, joint law at each D'),
      ('loss_vs_d.png', 'tokens', 'n_params', 'Loss vs D, joint law at each N'),
  ):
    fig = Figure(figsize=(7, 4), layout='tight')
    ax = fig.subplots()
    _plot_loss_against(ax, runs, joint.fit, variable, other)
    save(fig, name, title)
  predicted = laws.predict(joint.fit.theta, runs.log_x('n_params', 'tokens'),
                           joint.fit.form)
  fig = Figure(figsize=(6, 4), layout='tight')
  ax = fig.subplots()
  points = ax.scatter(
      runs.flops,
      runs.loss / predicted - 1.0,
      c=np.log10(runs.n_params),
      s=18,
  )
  fig.colorbar(points, label='log10 N')
  ax.axhline(0.0, color='gray', lw=0.8)
  ax.set(xscale='log', xlabel='C (training FLOPs)', ylabel='L / L̂ − 1')
  save(fig, 'residuals.png', 'Relative residuals of the joint law')
  if isinstance(holdout, analysis.Holdout):
    fitted = laws.predict(
        holdout.fit.theta, holdout.train.log_x('n_params', 'tokens'),
        holdout.fit.form
    )
    fig = Figure(figsize=(10, 4.5), layout='tight')
    ax, by_compute = fig.subplots(1, 2)
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
    # The error per run against compute: does it grow past the threshold?
    by_compute.scatter(holdout.train.flops, 100 * (fitted / holdout.train.loss
                                                   - 1.0),
                       color='lightgray', s=14, label='fitted on')
    by_compute.scatter(holdout.held.flops, 100 * holdout.relative_error,
                       color='C3', s=22, label='held out')
    by_compute.axhline(0.0, color='black', lw=0.8)
    by_compute.set(xscale='log', xlabel='C (training FLOPs)',
                   ylabel='prediction error (%)')
    by_compute.legend()
    save(fig, 'holdout.png', 'Held-out largest runs')
  return paths
