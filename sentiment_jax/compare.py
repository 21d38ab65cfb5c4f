"""Compares trained runs: one Markdown table row per workdir, read from the
files each run wrote (config.json, summary.json, eval_<split>.json and the
`init_from` run's pretrain_summary.json). Nothing is recomputed.

  python -m sentiment_jax.compare runs/base runs/label_smoothing ...
  python -m sentiment_jax.compare --tradeoff=tradeoff.png runs/...

The "changes" column lists every setting that differs from
`configs/base.py`, so a table of levers names each lever by its override.
Runs whose changes differ only in `train.seed` form a group, and a second
table gives each group's mean and sample standard deviation. With
`--tradeoff=PATH` it also draws each setting's IMDB test accuracy against
its accuracy on the counterfactual dev revisions (`--eval_split=cad_dev`),
seeds averaged.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

import jinja2

from configs import base
from sentiment_jax import workdir as workdir_lib
from sentiment_jax.errors import WorkdirError

# Where a run is, not what it is: never a lever.
_LOCATIONS = ('data.tfds_data_dir', 'data.tokenizer_path', 'train.init_from')
# Pretraining settings that one objective alone reads.
_OBJECTIVE_OF = {'pretrain.tied_decoder': 'mlm',
                 'pretrain.generator_embed_dim': 'electra',
                 'pretrain.detector_weight': 'electra'}
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / 'templates'),
    autoescape=False, undefined=jinja2.StrictUndefined, trim_blocks=True,
    lstrip_blocks=True, keep_trailing_newline=True)


def _changes(saved: dict, defaults: dict[str, Any], wanted) -> list[str]:
  """`key=value` for each wanted setting that differs from the defaults. A
  setting the run predates had its default's behaviour, or the one
  `workdir.with_predated` records."""
  saved = workdir_lib.flatten(workdir_lib.with_predated(saved))
  return [f'{key}={saved[key]}' for key in sorted(saved)
          if wanted(key) and key in defaults and saved[key] != defaults[key]]


def _read_json(path: Path) -> dict | None:
  return workdir_lib.read_json(path, 'evaluate or train that run again')


def row(workdir: Path) -> dict[str, Any]:
  """One run's settings and results. Needs a finished training run."""
  config = workdir_lib.saved_config(workdir, 'train that run again')
  summary = _read_json(workdir / 'summary.json')
  if config is None or summary is None:
    raise WorkdirError(f'{workdir} holds no finished training run (no '
                       'config.json or summary.json); pass a trained workdir')
  defaults = workdir_lib.flatten(base.get_config().to_dict())
  # Pretraining settings matter only to a run that starts from one.
  changes = _changes(config, defaults, lambda key: key not in _LOCATIONS
                     and not key.startswith(('pretrain.', 'eval.')))
  evals = {split: _read_json(workdir / f'eval_{split}.json')
           for split in ('test', 'rotten_tomatoes', 'cad_dev')}
  source = config['train'].get('init_from', '')
  pretrained = _read_json(Path(source) / 'pretrain_summary.json') if source else None
  if pretrained:
    saved = workdir_lib.saved_config(Path(source), 'pretrain again')
    objective = saved['pretrain'].get('objective', 'mlm')
    changes += _changes(saved, defaults, lambda key: key.startswith(
        'pretrain.') and _OBJECTIVE_OF.get(key, objective) == objective)
  baseline = evals['test'] and evals['test'].get('baseline')
  return {
      'name': workdir.name, 'changes': changes, 'summary': summary,
      'test': evals['test'] and evals['test']['metrics'],
      'mcnemar': baseline and baseline.get('mcnemar'),
      'rotten_tomatoes': evals['rotten_tomatoes'] and evals[
          'rotten_tomatoes']['metrics'],
      'pretrained': pretrained,
      'cad_dev': evals['cad_dev'] and evals['cad_dev']['transformer']['all'],
  }


def _mean_std(values: list[float | None]) -> dict[str, float] | None:
  """Mean and sample std (n - 1) of the values, or None if any is missing."""
  if any(v is None for v in values):
    return None
  return {'mean': statistics.mean(values), 'std': statistics.stdev(values)}


def _by_settings(rows: list[dict[str, Any]]
                 ) -> dict[tuple[str, ...], list[dict[str, Any]]]:
  """The rows grouped by their changes other than train.seed (the key), in
  order of first appearance."""
  groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
  for r in rows:
    key = tuple(c for c in r['changes'] if not c.startswith('train.seed='))
    groups.setdefault(key, []).append(r)
  return groups


def seed_groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """Groups of two or more rows whose changes differ only in train.seed,
  with the mean and std of their validation, test and Rotten Tomatoes
  accuracy, in order of first appearance."""
  metric = lambda r, part: r[part] and r[part]['accuracy']
  return [{'changes': list(key), 'names': [r['name'] for r in members],
           'val': _mean_std([r['summary']['best_val_accuracy']
                             for r in members]),
           'test': _mean_std([metric(r, 'test') for r in members]),
           'rotten_tomatoes': _mean_std([metric(r, 'rotten_tomatoes')
                                         for r in members]),
           'cad_dev_pairs': _mean_std([r['cad_dev'] and r['cad_dev'][
               'pair_accuracy'] for r in members])}
          for key, members in _by_settings(rows).items() if len(members) > 1]


def tradeoff_points(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """One point per setting (its seeds averaged, with their std) among the
  runs scored on IMDB test and CAD dev: x is CAD dev revisions accuracy,
  y IMDB test accuracy."""
  points = []
  for members in _by_settings(rows).values():
    scored = [r for r in members if r['test'] and r['cad_dev']]
    if not scored:
      continue
    xs = [r['cad_dev']['revised_accuracy'] for r in scored]
    ys = [r['test']['accuracy'] for r in scored]
    seeds = len(scored)
    points.append({
        'label': scored[0]['name'] + (f' ({seeds} seeds)' if seeds > 1 else ''),
        'seeds': seeds, 'x': statistics.mean(xs), 'y': statistics.mean(ys),
        'x_std': statistics.stdev(xs) if seeds > 1 else 0.0,
        'y_std': statistics.stdev(ys) if seeds > 1 else 0.0})
  return points


def _number_points(ax, points: list[dict[str, Any]], renderer) -> None:
  """Numbers the points from 1, each at the first of a few offsets where
  its text stays inside the axes and covers no marker and no number placed
  before it, or else where it covers the least of them."""
  from matplotlib.transforms import Bbox
  offsets = [(dx, dy, align) for dy in (1, -7, 8, -14)
             for dx, align in ((4, 'left'), (-4, 'right'))]
  markers = ax.transData.transform([(p['x'], p['y']) for p in points])
  placed = [Bbox.from_bounds(x - 2, y - 2, 4, 4) for x, y in markers]

  def covered(box: Bbox) -> float:
    """Area of the box over placed boxes or outside the axes (pixels²)."""
    inside = Bbox.intersection(box, ax.bbox)
    area = box.width * box.height - (inside.width * inside.height
                                     if inside else 0)
    for other in placed:
      overlap = Bbox.intersection(box, other)
      area += overlap.width * overlap.height if overlap else 0
    return area

  for number, p in enumerate(points, 1):
    best = None
    for dx, dy, align in offsets:
      text = ax.annotate(str(number), (p['x'], p['y']), fontsize=7,
                         textcoords='offset points', xytext=(dx, dy),
                         ha=align)
      box = text.get_window_extent(renderer)
      cost = covered(box)
      if best is None or cost < best[0]:
        if best:
          best[1].remove()
        best = (cost, text, box)
      else:
        text.remove()
      if cost == 0:
        break
    placed.append(best[2])


def draw_tradeoff(rows: list[dict[str, Any]], path: Path) -> None:
  """IMDB test accuracy against CAD dev revisions accuracy, one numbered
  point per setting, named in a key beside the plot (labels beside the
  points crowd each other); a setting run at several seeds is their mean
  with a one-std bar on each axis."""
  # Only this option needs matplotlib.
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  fig = Figure(figsize=(12, 6.5))
  canvas = FigureCanvasAgg(fig)
  ax, key = fig.subplots(1, 2, width_ratios=[3, 1])
  points = sorted(tradeoff_points(rows), key=lambda p: -p['y'])
  key.axis('off')
  key.text(0, 1, 'setting: CAD dev revisions / IMDB test\n\n' + '\n'.join(
      f"{number:2d} {p['label']}: {p['x']:.3f} / {p['y']:.4f}"
      for number, p in enumerate(points, 1)), va='top', fontsize=7,
      family='monospace', transform=key.transAxes)
  for p in points:
    several = p['seeds'] > 1
    ax.errorbar(p['x'], p['y'], xerr=p['x_std'], yerr=p['y_std'], fmt='o',
                markersize=5 if several else 4, elinewidth=0.8,
                color='tab:orange' if several else 'tab:blue')
  for guard, who in ((0.885, 'base'), (0.900, 'best')):
    ax.axhline(guard, color='grey', linestyle=':', linewidth=0.8)
    ax.annotate(f"{who}'s IMDB target", (0, guard), xycoords=(
        'axes fraction', 'data'), xytext=(3, 2), textcoords='offset points',
        fontsize=7, color='grey')
  ax.set_xlabel('CAD dev revisions accuracy')
  ax.set_ylabel('IMDB test accuracy')
  ax.set_title('Reading the edit against reading IMDB '
               '(orange: mean ± std over seeds)')
  ax.grid(alpha=0.3)
  fig.tight_layout()
  # Numbers are placed in screen space, so the axes must be final first.
  _number_points(ax, points, canvas.get_renderer())
  fig.savefig(path, dpi=100)


def main(argv: list[str]) -> None:
  tradeoff = argv[0].partition('=')[2] if argv and argv[0].startswith(
      '--tradeoff=') else None
  workdirs = argv[1:] if tradeoff else argv
  if not workdirs or any(a.startswith('-') for a in workdirs):
    sys.exit('usage: python -m sentiment_jax.compare [--tradeoff=PNG] '
             'WORKDIR [WORKDIR ...]; each a trained run')
  try:
    rows = [row(Path(a)) for a in workdirs]
  except WorkdirError as e:
    sys.exit(f'error: {e}')
  print(_ENV.get_template('compare.md').render(
      rows=rows, groups=seed_groups(rows)), end='')
  if tradeoff:
    draw_tradeoff(rows, Path(tradeoff))


if __name__ == '__main__':
  main(sys.argv[1:])
