"""REVIEW.md, rendered from the findings (`findings.py`) and the benchmark's JSON.

  python -m review.report [--results=review/results.json] [--out=review/REVIEW.md]

Python picks the before/after pairs out of `results.json`; the template
(`templates/REVIEW.md`) lays them out. No number is typed by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jinja2
from absl import app, flags

from review import findings

_RESULTS = flags.DEFINE_string('results', 'review/results.json',
                               'JSON written by `review.benchmark --out`.')
_OUT = flags.DEFINE_string('out', 'review/REVIEW.md', 'Markdown to write.')

# Each optimisation: (what changed, findings it fixes, before, after).
STEPS = (
    ('Jit the step once, batch as an argument, state donated', (10, 11),
     'naive', 'naive_jit'),
    ('XLA:CPU dot kernels instead of YNNPACK (`sentiment_jax/__init__.py`)',
     (), 'ours_ynnpack', 'ours'),
    ('Transparent huge pages for malloc (`sentiment_jax/hugepages.py`)', (),
     'ours_small_pages', 'ours'),
    ('One fused QKV matmul, batched heads, and the blocks on a flattened '
     'token axis', (12, 17), 'naive_jit', 'ours'),
    ('Batch split over 2 host devices (one per core)', (), 'ours',
     'ours_2dev'),
)

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / 'templates'),
    autoescape=False, undefined=jinja2.StrictUndefined, trim_blocks=True,
    lstrip_blocks=True, keep_trailing_newline=True)
_ENV.filters['ms'] = lambda s: f'{1e3 * s:,.0f}' if s >= 0.01 else \
    f'{1e3 * s:.1f}'
_ENV.filters['pct'] = lambda x: 'n/a' if x is None else f'{100 * x:.1f}%'
_ENV.filters['x'] = lambda x: 'n/a' if x is None else f'{x:.2f}×'
_ENV.filters['num'] = lambda x: f'{x:,.0f}'


def optimisation_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
  """The before/after table: rows whose two variants both ran."""
  variants = results['variants']
  return [{'change': change, 'findings': numbers, 'before': before,
           'after': after,
           'before_ms': variants[before]['train']['median_s'],
           'after_ms': variants[after]['train']['median_s'],
           'gain': (variants[after]['tokens_per_s']
                    / variants[before]['tokens_per_s']),
           'eval_gain': (variants[before]['eval']['median_s']
                         / variants[after]['eval']['median_s'])}
          for change, numbers, before, after in STEPS
          if before in variants and after in variants]


def render(results: dict[str, Any]) -> str:
  return _ENV.get_template('REVIEW.md').render(
      r=results, findings=findings.FINDINGS, rows=optimisation_rows(results))


def main(argv) -> None:
  del argv
  try:
    results = json.loads(Path(_RESULTS.value).read_text())
  except (OSError, json.JSONDecodeError) as error:
    sys.exit(f'error: cannot read --results={_RESULTS.value} ({error}); run '
             '`python -m review.benchmark --out=review/results.json` first')
  Path(_OUT.value).write_text(render(results))
  print(f'wrote {_OUT.value}')


if __name__ == '__main__':
  app.run(main)
