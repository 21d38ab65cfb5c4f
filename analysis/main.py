"""Command line: `python -m analysis.main --workdir=runs/base [--out_dir=analysis]`.

Loads the run once, fits the TF-IDF baseline and both temperatures, runs the
chosen studies on both models with a progress bar each, stores the
transformer's temperature in the workdir when the calibration study runs (so
predict and eval calibrate from then on), and writes `results.json`,
`figures/` and `REPORT.md` to `--out_dir`. Expected failures print one line
and exit non-zero, before anything is written.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from absl import app, flags, logging

STUDIES = ('calibration', 'behaviour', 'shift', 'ood', 'selective', 'attack',
           'counterfactual')

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained run directory.')
_OUT_DIR = flags.DEFINE_string('out_dir', 'analysis',
                               'Where results.json, figures/ and REPORT.md go.')
_STUDIES = flags.DEFINE_list('studies', list(STUDIES),
                             f'Studies to run, from {",".join(STUDIES)}.')
_BOOTSTRAP = flags.DEFINE_integer('bootstrap_samples', 1000,
                                  'Resamples per interval (OOD uses a fifth).')
_ATTACK = flags.DEFINE_integer('attack_examples', 200,
                               'Correct test reviews each attack edits.')
_OOD = flags.DEFINE_integer('ood_examples', 1000,
                            'Examples per out-of-distribution set (at most).')
_FEATURES = flags.DEFINE_integer('feature_examples', 4000,
                                 'Training reviews for the Mahalanobis fit.')
_EDITS = flags.DEFINE_integer('dir_examples', 200,
                              'Real test reviews per INV and DIR test.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds every sample and template.')
flags.mark_flag_as_required('workdir')


def _check_out_dir(out_dir: Path, error) -> None:
  """Refuses an unwritable --out_dir before any work (nothing is created)."""
  existing = out_dir
  while not existing.exists():
    existing = existing.parent
  if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
    raise error(f'--out_dir={out_dir} is not writable ({existing} is not a '
                'writable directory); pass another --out_dir')


def _finite(value: Any) -> Any:
  """JSON has no inf or NaN: they become null."""
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, dict):
    return {k: _finite(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_finite(v) for v in value]
  return value


def run_studies(ctx, studies: list[str]) -> tuple[dict, dict, dict]:
  """Each study on both models; returns results, baseline results, seconds."""
  import tqdm  # pylint: disable=g-import-not-at-top
  from analysis import (attack, behaviour, calibration, counterfactual, ood,  # pylint: disable=g-import-not-at-top
                        selective, shift)
  modules = {'calibration': calibration, 'behaviour': behaviour,
             'shift': shift, 'ood': ood, 'selective': selective,
             'attack': attack, 'counterfactual': counterfactual}
  results, baseline, seconds = {}, {}, {'transformer': {}, 'baseline': {}}
  for study in studies:
    module = modules[study]
    with tqdm.tqdm(total=2 * module.steps(ctx), desc=study) as progress:
      for scorer, into in ((ctx.transformer, results),
                           (ctx.baseline, baseline)):
        start = time.perf_counter()
        into[study] = module.run(ctx, scorer, progress)
        seconds[scorer.name][study] = time.perf_counter() - start
    took = seconds['transformer'][study] + seconds['baseline'][study]
    print(f'{study}: {took:.1f} s', file=sys.stderr)
  return results, baseline, seconds


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  start = time.perf_counter()
  # Heavy imports after flag parsing, so --help and flag errors are instant.
  from sentiment_jax import errors, inference  # pylint: disable=g-import-not-at-top
  try:
    unknown = sorted(set(_STUDIES.value) - set(STUDIES))
    if unknown or not _STUDIES.value:
      raise errors.InputError(
          f'--studies: unknown study {", ".join(unknown) or "(none given)"}; '
          f'choose from {",".join(STUDIES)}')
    studies = [s for s in STUDIES if s in _STUDIES.value]
    out_dir = Path(_OUT_DIR.value)
    _check_out_dir(out_dir, errors.InputError)
    import jax  # pylint: disable=g-import-not-at-top
    from analysis import context as context_lib, figures, report  # pylint: disable=g-import-not-at-top
    from configs import base  # pylint: disable=g-import-not-at-top
    # The run's saved model and data settings override base's.
    predictor = inference.load_predictor(base.get_config(), _WORKDIR.value)
    options = context_lib.Options(_BOOTSTRAP.value, _ATTACK.value, _OOD.value,
                                  _FEATURES.value, _EDITS.value, _SEED.value)
    setup = time.perf_counter()
    ctx = context_lib.build(predictor, options)
    setup = time.perf_counter() - setup
    print(f'setup (splits, baseline fit, validation scores): {setup:.1f} s',
          file=sys.stderr)
    if 'calibration' in studies:
      predictor.save_calibration(ctx.transformer.calibration)
    results, baseline, seconds = run_studies(ctx, studies)
    total = time.perf_counter() - start
    results['seconds'] = {**seconds['transformer'], 'setup': setup,
                          'total': total}
    baseline['seconds'] = {**seconds['baseline'],
                           'fit': ctx.baseline_model.fit_seconds}
    results['baseline'] = baseline
    results['meta'] = {
        'command': 'python -m analysis.main ' + shlex.join(sys.argv[1:]),
        'workdir': str(_WORKDIR.value), 'checkpoint_step': predictor.step,
        'studies': studies, 'options': vars(options),
        'date': datetime.date.today().isoformat(),
        'machine': {'cpu_count': os.cpu_count(), 'platform': platform.platform(),
                    'jax': jax.__version__,
                    'devices': [str(d) for d in jax.devices()]},
        'model': predictor.config.model.to_dict(),
        'counterfactual_training': {
            key: predictor.config.data[key] for key in (
                'counterfactual_copies', 'generated_counterfactuals',
                'generated_edit', 'generated_unit')},
        'splits': {k: len(v.texts) for k, v in ctx.splits.items()}}
    results = _finite(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'results.json').write_text(json.dumps(results, indent=1))
    figures.draw(results, out_dir / 'figures')
    (out_dir / 'REPORT.md').write_text(report.render(results))
    print(report.table(results))
    print(f'wrote {out_dir}/results.json, {out_dir}/figures/, '
          f'{out_dir}/REPORT.md; temperature stored in {_WORKDIR.value}')
  except errors.UserError as e:
    sys.exit(f'error: {e}')
  except KeyboardInterrupt:
    sys.exit('interrupted; nothing was written to --out_dir')


if __name__ == '__main__':
  app.run(main)
