"""Run figures: training curves, ROC curve and confusion matrix (PNG files).

Figures are built with matplotlib's object API (`Figure`, no pyplot), which
needs no GUI backend and keeps no global figure state, so no module has to
call `matplotlib.use('Agg')`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn import metrics as skm

from sentiment_jax import metrics


def training_curves(records: list[dict], path: Path) -> None:
  """Loss and accuracy against step, train and validation, from metrics.jsonl."""
  fig = Figure(figsize=(10, 4), layout='tight')
  for ax, metric in zip(fig.subplots(1, 2), ('loss', 'accuracy')):
    for split in ('train', 'val'):
      points = [(r['step'], r[f'{split}/{metric}']) for r in records
                if f'{split}/{metric}' in r]
      if points:
        ax.plot(*zip(*points), marker='o' if split == 'val' else None,
                label=split)
    ax.set_xlabel('step')
    ax.set_title(metric)
    ax.grid(alpha=0.3)
    ax.legend()
  fig.savefig(path, dpi=100)


def roc_and_confusion(logits: np.ndarray, labels: np.ndarray, split: str,
                      directory: Path) -> None:
  """Writes `roc_<split>.png` and `confusion_<split>.png` into `directory`."""
  fig = Figure(figsize=(4.5, 4.5), layout='tight')
  ax = fig.subplots()
  skm.RocCurveDisplay.from_predictions(labels, metrics.p_positive(logits),
                                       ax=ax, name='transformer')
  ax.plot([0, 1], [0, 1], 'k:', lw=1)
  ax.set_title(f'ROC: {split}')
  fig.savefig(directory / f'roc_{split}.png', dpi=100)
  fig = Figure(figsize=(4.5, 4), layout='tight')
  ax = fig.subplots()
  skm.ConfusionMatrixDisplay.from_predictions(
      labels, metrics.decide(logits), display_labels=list(metrics.LABEL_NAMES),
      ax=ax, colorbar=False)
  ax.set_title(f'Confusion matrix: {split}')
  fig.savefig(directory / f'confusion_{split}.png', dpi=100)
