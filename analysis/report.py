"""REPORT.md and the terminal table, rendered from `results.json` alone.

Python only picks rows and comparisons out of the results; the template
(`templates/REPORT.md`) lays them out. No number is typed by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

OOD_SCORES = ('msp', 'max_logit', 'energy', 'mahalanobis', 'length')

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / 'templates'),
    autoescape=False, undefined=jinja2.StrictUndefined, trim_blocks=True,
    lstrip_blocks=True, keep_trailing_newline=True)
_ENV.filters['pct'] = lambda x, digits=1: ('n/a' if x is None
                                           else f'{100 * x:.{digits}f}%')
_ENV.filters['ci'] = lambda pair, digits=1: (
    'n/a' if pair is None or None in pair
    else f'[{100 * pair[0]:.{digits}f}, {100 * pair[1]:.{digits}f}]')
_ENV.filters['f3'] = lambda x: 'n/a' if x is None else f'{x:.3f}'
_ENV.filters['f4'] = lambda x: 'n/a' if x is None else f'{x:.4f}'
_ENV.filters['num'] = lambda x: 'n/a' if x is None else f'{x:,.0f}'
_ENV.filters['sec'] = lambda x: f'{x:.0f} s'
_ENV.filters['excerpt'] = lambda text, n=160: (
    (text[:n] + '…' if len(text) > n else text).replace('|', '\\|'))


def ood_verdicts(ood: dict[str, Any]) -> list[dict[str, Any]]:
  """Per OOD set: the scores whose AUROC interval lies above the length
  detector's AUROC, and those that do not."""
  rows = []
  for set_name, block in ood.items():
    if not isinstance(block, dict) or 'length' not in block:
      continue
    bar = block['length']['auroc']
    beat, lose = [], []
    for score in OOD_SCORES[:-1]:
      entry = block.get(score, {})
      if entry.get('auroc') is not None:
        (beat if entry['auroc_ci95'][0] > bar else lose).append(score)
    rows.append({'set': set_name, 'length_auroc': bar, 'beat': beat,
                 'lose': lose})
  return rows


def render(results: dict[str, Any]) -> str:
  return _ENV.get_template('REPORT.md').render(
      r=results, b=results['baseline'], scores=OOD_SCORES,
      verdicts={name: ood_verdicts(m['ood']) for name, m in
                (('transformer', results), ('baseline', results['baseline']))
                if 'ood' in m})


def table(results: dict[str, Any]) -> str:
  """The headline numbers of both models, one line each, for the terminal."""
  rows = []
  both = (results, results['baseline'])

  def add(name, get, fmt=lambda x: f'{x:.4f}'):
    values = []
    for model in both:
      try:
        value = get(model)
      except (KeyError, TypeError):
        value = None
      values.append('n/a' if value is None else fmt(value))
    rows.append(f'{name:<44}{values[0]:>13}{values[1]:>13}')

  add('calibration.temperature', lambda m: m['calibration']['temperature'])
  for split in ('test', 'rotten_tomatoes'):
    for when in ('before', 'after'):
      add(f'calibration.{split}.ece_15_{when}',
          lambda m, s=split, w=when: m['calibration'][s][f'ece_15_{w}'])
  add('behaviour.mean_failure_rate', lambda m: sum(
      t['failure_rate'] for t in m['behaviour']['tests']) / len(
          m['behaviour']['tests']))
  add('shift.test.accuracy', lambda m: m['shift']['test']['accuracy'])
  add('shift.rotten_tomatoes.accuracy',
      lambda m: m['shift']['rotten_tomatoes']['accuracy'])
  for set_name in ('rotten_tomatoes', 'python_docs'):
    add(f'ood.{set_name}.msp.auroc',
        lambda m, s=set_name: m['ood'][s]['msp']['auroc'])
  add('ood.python_docs.mahalanobis.auroc',
      lambda m: m['ood']['python_docs']['mahalanobis']['auroc'])
  add('selective.test.aurc', lambda m: m['selective']['test']['aurc'])
  add('selective.test.coverage_at_accuracy_0.95',
      lambda m: m['selective']['test']['coverage_at_accuracy_0.95'])
  for attack in ('synonym_strict', 'synonym_lax', 'hotflip'):
    add(f'attack.{attack}.after_attack_accuracy',
        lambda m, a=attack: m['attack'][a]['after_attack_accuracy'])
  seconds = results['seconds']
  lines = [f'{"":<44}{"transformer":>13}{"tf-idf":>13}'] + rows
  lines.append('seconds: ' + ', '.join(
      f'{k} {v:.0f}' for k, v in seconds.items()))
  return '\n'.join(lines)
