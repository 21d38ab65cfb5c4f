"""The study's figures, drawn from `results.json` alone (matplotlib Figure API).

So the figures can be redrawn from a committed results file without a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

MODELS = (('transformer', 'C0'), ('baseline', 'C1'))


def _model(results: dict[str, Any], name: str) -> dict[str, Any]:
  return results if name == 'transformer' else results['baseline']


def reliability(results: dict[str, Any], path: Path) -> None:
  """Accuracy vs confidence per 15-bin, before and after scaling, with counts."""
  splits = [s for s in ('test', 'rotten_tomatoes')
            if s in results['calibration']]
  fig = Figure(figsize=(4 * len(splits) * 2, 7.5))
  axes = fig.subplots(2, 2 * len(splits), squeeze=False)
  for row, (name, color) in enumerate(MODELS):
    cal = _model(results, name)['calibration']
    for col, (split, when) in enumerate(
        (s, w) for s in splits for w in ('before', 'after')):
      ax, report = axes[row, col], cal[split]
      bins = report[f'reliability_{when}']
      centres = [(b['low'] + b['high']) / 2 for b in bins]
      width = 1 / 15
      ax.bar(centres, [b['accuracy'] for b in bins], width=width * 0.9,
             color=color, alpha=0.8, label='accuracy')
      ax.plot([0.5, 1], [0.5, 1], 'k--', lw=1, label='perfect')
      ax.plot(centres, [b['confidence'] for b in bins], 'k.', ms=4,
              label='mean confidence')
      for c, b in zip(centres, bins):
        ax.annotate(str(b['count']), (c, 0.42), ha='center', fontsize=6,
                    rotation=90)
      ax.set(xlim=(0.45, 1.0), ylim=(0.4, 1.02), xlabel='confidence',
             title=f'{name}, {split}, {when}\nECE-15 '
                   f'{report[f"ece_15_{when}"]:.3f}'
                   + (f' (T={cal["temperature"]:.2f})' if when == 'after'
                      else ''))
      ax.title.set_fontsize(9)
      if col == 0:
        ax.set_ylabel('accuracy (bin counts at the bottom)')
  axes[0, 0].legend(fontsize=7, loc='upper left')
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def risk_coverage(results: dict[str, Any], path: Path) -> None:
  splits = [s for s in ('test', 'rotten_tomatoes')
            if s in results['selective']]
  fig = Figure(figsize=(5 * len(splits), 4))
  axes = fig.subplots(1, len(splits), squeeze=False)[0]
  for ax, split in zip(axes, splits):
    for name, color in MODELS:
      report = _model(results, name)['selective'][split]
      ax.plot(report['curve']['coverage'], report['curve']['risk'],
              color=color, label=f'{name} (AURC {report["aurc"]:.4f})')
    ax.set(xlabel='coverage', ylabel='risk (error rate of accepted)',
           title=f'risk-coverage, {split}', ylim=(0, None))
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def ood(results: dict[str, Any], path: Path) -> None:
  """AUROC per OOD set and score, with 95% intervals, both models."""
  sets = [k for k, v in results['ood'].items() if isinstance(v, dict)]
  scores = ('msp', 'max_logit', 'energy', 'mahalanobis', 'length')
  fig = Figure(figsize=(11, 4))
  axes = fig.subplots(1, len(MODELS), sharey=True)
  for ax, (name, _) in zip(axes, MODELS):
    block = _model(results, name)['ood']
    for j, score in enumerate(scores):
      xs, ys, errs = [], [], []
      for i, set_name in enumerate(sets):
        entry = block[set_name].get(score, {})
        if entry.get('auroc') is not None:
          low, high = entry['auroc_ci95']
          xs.append(i + (j - 2) * 0.16)
          ys.append(entry['auroc'])
          # A bootstrap interval need not contain the point estimate.
          errs.append([[max(entry['auroc'] - low, 0)],
                       [max(high - entry['auroc'], 0)]])
      if xs:
        # One colour per score in both panels.
        ax.bar(xs, ys, width=0.15, label=score, color=f'C{j}',
               yerr=np.concatenate(errs, axis=1), capsize=2)
    ax.axhline(0.5, color='k', lw=0.8, ls='--')
    ax.set_xticks(range(len(sets)), sets, fontsize=8)
    ax.set(title=f'{name}: OOD AUROC vs IMDB test', ylim=(0, 1.05))
  axes[0].set_ylabel('AUROC (0.5 = chance)')
  axes[0].legend(fontsize=7, loc='lower left')
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def behaviour(results: dict[str, Any], path: Path) -> None:
  """Failure rate with its Wilson interval per test, both models."""
  tests = results['behaviour']['tests']
  fig = Figure(figsize=(8, 0.38 * len(tests) + 1.2))
  ax = fig.subplots()
  y = np.arange(len(tests))
  for k, (name, color) in enumerate(MODELS):
    rows = _model(results, name)['behaviour']['tests']
    rates = np.asarray([r['failure_rate'] for r in rows])
    ci = np.asarray([r['ci95'] for r in rows])
    # Clipped at 0: float rounding can put a bound a hair past the rate.
    errors = np.maximum([rates - ci[:, 0], ci[:, 1] - rates], 0)
    ax.barh(y + (k - 0.5) * 0.4, rates, height=0.38, color=color, label=name,
            xerr=errors, capsize=2)
  ax.set_yticks(y, [f'{t["type"]} {t["name"]}' for t in tests], fontsize=8)
  ax.invert_yaxis()
  ax.set(xlabel='failure rate (Wilson 95% CI)', xlim=(0, 1))
  ax.legend(fontsize=8, loc='lower right')
  fig.tight_layout()
  fig.savefig(path, dpi=110)


DRAWERS = {'calibration': reliability, 'selective': risk_coverage,
           'ood': ood, 'behaviour': behaviour}


def draw(results: dict[str, Any], directory: Path) -> list[str]:
  """Every figure whose study is in `results`; returns the file names."""
  directory.mkdir(parents=True, exist_ok=True)
  names = []
  for study, drawer in DRAWERS.items():
    if study in results and 'skipped' not in results[study]:
      drawer(results, directory / f'{study}.png')
      names.append(f'{study}.png')
  return names
