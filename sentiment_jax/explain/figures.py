"""Figures of one text's attention: per-head heatmaps, pooled attention, rollout bars.

Built with matplotlib's object API (`Figure`), which needs no GUI backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from sentiment_jax.explain.attribution import pooled_attention

MAX_LABELLED_TOKENS = 40  # Above this many tokens, figures show positions only.


def _label_tokens(ax, tokens: Sequence[str], axes: str) -> None:
  """Token labels on the given axes ('x', 'y', 'xy') when they fit."""
  if len(tokens) > MAX_LABELLED_TOKENS:
    if 'x' in axes:
      ax.set_xlabel('token position')
    if 'y' in axes:
      ax.set_ylabel('token position')
    return
  positions = range(len(tokens))
  if 'x' in axes:
    ax.set_xticks(positions, tokens, rotation=90, fontsize=7)
  if 'y' in axes:
    ax.set_yticks(positions, tokens, fontsize=7)


def _figure_width(num_tokens: int) -> float:
  if num_tokens > MAX_LABELLED_TOKENS:
    return 12.0
  return max(6.0, 0.22 * num_tokens + 2)


def plot_heads(weights: np.ndarray, tokens: Sequence[str], layers: list[int],
               heads: list[int], path: Path) -> None:
  """Layers x heads grid of `[query, key]` heatmaps (bertviz's model view).

  Each panel's colours run from 0 to its 99th percentile: on long inputs a few
  peaks would otherwise leave the rest of the map white.
  """
  labelled = len(tokens) <= MAX_LABELLED_TOKENS
  cell = max(3.0, 0.12 * len(tokens) + 1) if labelled else 4.0
  cell = min(cell, 40 / max(len(layers), len(heads)))  # Bounded image size.
  fig = Figure(figsize=(cell * len(heads), cell * len(layers)),
               layout='constrained')
  axes = fig.subplots(len(layers), len(heads), squeeze=False)
  for row, layer in zip(axes, layers):
    for ax, head in zip(row, heads):
      panel = weights[layer, head]
      ax.imshow(panel, cmap='Blues', vmin=0, vmax=np.quantile(panel, 0.99),
                interpolation='nearest')
      ax.set_title(f'layer {layer}, head {head}', fontsize=9)
      _label_tokens(ax, tokens, 'xy')
  fig.suptitle('Attention per head\nrows (query) attend to columns (key); '
               'colours per panel, 0 to its 99th percentile', fontsize=10)
  fig.savefig(path, dpi=100)


def plot_pooled(weights: np.ndarray, tokens: Sequence[str], layers: list[int],
                heads: list[int], pooling: str, path: Path) -> None:
  """Attention from the pooled position over the tokens, one row per layer."""
  rows = np.stack([pooled_attention(weights[layer, heads].mean(0), pooling)
                   for layer in layers])
  fig = Figure(figsize=(_figure_width(len(tokens)), 1.6 + 0.4 * len(layers)),
               layout='constrained')
  ax = fig.subplots()
  image = ax.imshow(rows, aspect='auto', cmap='Oranges', vmin=0,
                    interpolation='nearest')
  ax.set_yticks(range(len(layers)), [f'layer {layer}' for layer in layers])
  _label_tokens(ax, tokens, 'x')
  fig.colorbar(image, ax=ax, fraction=0.03)
  where = ('row 0, [CLS]' if pooling == 'cls'
           else 'mean over the query rows of the real tokens')
  ax.set_title(f'Attention from the pooled position ({where})\n'
               f'mean over heads {",".join(map(str, heads))}', fontsize=10)
  fig.savefig(path, dpi=100)


def plot_rollout(scores: np.ndarray, tokens: Sequence[str], path: Path) -> None:
  """Bar chart of the rollout `[n]` at the pooled position.

  Too many tokens to label all: the ten highest bars are labelled instead.
  """
  fig = Figure(figsize=(_figure_width(len(tokens)), 3.2), layout='constrained')
  ax = fig.subplots()
  ax.bar(range(len(tokens)), scores, color='tab:orange', width=0.8)
  ax.set_xlim(-0.5, len(tokens) - 0.5)
  ax.set_ylim(0, scores.max() * (1.35 if len(tokens) > MAX_LABELLED_TOKENS
                                 else 1.05))
  ax.set_ylabel('share of the pooled state')
  _label_tokens(ax, tokens, 'x')
  if len(tokens) > MAX_LABELLED_TOKENS:
    for position in np.argsort(-scores, kind='stable')[:10]:
      ax.annotate(tokens[position], (position, scores[position]),
                  rotation=90, fontsize=7, ha='center', va='bottom',
                  xytext=(0, 2), textcoords='offset points')
  ax.set_title('Attention rollout (Abnar & Zuidema 2020) at the pooled '
               'position\nall layers and heads', fontsize=10)
  fig.savefig(path, dpi=100)
