"""Runs a scaling sweep: one training run per point, results to results.jsonl.

  python -m scaling.sweep --config=configs/scaling.py [--workdir=runs/scaling] \
      [--config.data.source=csv:PATH ...]

The config file defines the sweep as `get_sweep()`: a list of dicts of
`--config.*` overrides, one per point (big_vision's `get_hyper` style). Each
point trains in `<workdir>/<point name>` with the sweep's own `--config.*`
flags and then the point's overrides, by the function `--mode=train` calls
(`train.train_and_evaluate`), in this process: a point of a small model
spends most of its time outside its steps, and a process per point paid
~9 s of start and imports and ~6 s of data loading for each of ~240 runs.
Its `train.log` starts with the `python -m sentiment_jax.main` command that
trains the same run on its own. After each point one JSON line is appended
to `<workdir>/results.jsonl` (the fields `python -m scaling.fit` reads, and
more).

Every point tokenizes with one tokenizer, trained once on the whole training
split into `<workdir>/tokenizer.json`. If the config file also defines
`get_tuning()`, each model size first trains a cheap proxy at each of a few
learning rates (in `<workdir>/tuning/`, recorded in `tuning.jsonl`), and its
points train at the rate with the lowest proxy validation loss. A best rate
at the edge of its grid grows the grid one rate past that edge, up to
`max_extensions` times, so that the chosen rate is bracketed.

Rerunning the same command skips the runs already recorded; an interrupted
run resumes from its checkpoint, as the trainer always does.
"""

from __future__ import annotations

# pylint: disable=g-import-not-at-top,wrong-import-position
from sentiment_jax import hugepages

if __name__ == '__main__':
  # As the command line's runs do, and before the imports below, which the
  # restart would otherwise pay twice.
  hugepages.restart_with_huge_pages()

from collections.abc import Sequence
import contextlib
import json
from pathlib import Path
import shlex
import sys
import time
from typing import Any

from absl import app
from absl import flags
from absl import logging
import ml_collections
from ml_collections import config_flags

from scaling import eta, points as points_lib
from scaling.points import (SweepError, Tuning, check_points, load_sweep,
                            model_of, point_name)
from sentiment_jax import (data_sources, errors, input_pipeline, jsonl, models,
                           xla_cache)

# Names distinct from scaling/fit.py's flags, so both can share a process.
_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Config file with get_config() and get_sweep().',
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', 'runs/scaling', 'Sweep directory: results.jsonl and one '
    'sub-directory per point.')
flags.mark_flag_as_required('config')

RESULTS = 'results.jsonl'
LOG = 'train.log'  # Each point's trainer output, in its sub-directory.
TOKENIZER = 'tokenizer.json'  # The one tokenizer every point uses.
TUNING_RESULTS = 'tuning.jsonl'  # Learning-rate proxy runs, as results.jsonl.

# The loaded data by what `data_sources.load_splits` reads of the config.
Splits = dict[tuple, dict[str, input_pipeline.Split]]


def read_results(path: Path) -> list[dict[str, Any]]:
  """The records of results.jsonl; none if it does not exist yet."""
  if not path.exists():
    return []
  return [record for _, record in jsonl.read(path, SweepError)]


def train_flops(model: dict[str, Any], tokens: float, mean_seq: float
                ) -> float:
  """Training FLOPs of `tokens` tokens in examples of `mean_seq` tokens.

  `models.forward_flops` per example, times three for the backward pass, at
  the mean length: that undercounts long reviews' share of attention (their
  tokens attend over more) and ignores padding.
  """
  config = models.TransformerConfig(
      vocab_size=1, max_len=1, num_layers=model['num_layers'],
      num_heads=model['num_heads'], embed_dim=model['embed_dim'],
      mlp_dim=model['mlp_dim'])
  examples = tokens / mean_seq
  return (models.TRAIN_FLOPS_PER_FORWARD * examples
          * models.forward_flops(config, mean_seq))


def make_record(point: dict[str, Any], fixed: dict[str, Any], summary: dict,
                config: dict, wall_time_s: float, resumed: bool
                ) -> dict[str, Any]:
  """One results.jsonl line from a point's summary.json and config.json.

  `wall_time_s` is this invocation's: a resumed point's leaves out the part
  trained before the interruption, and `resumed` says so.
  """
  tokens = summary['train_tokens']
  mean_seq = tokens / (summary['step'] * config['data']['batch_size'])
  model = config['model']
  return {
      'name': point_name(point),
      'overrides': point,
      'config_overrides': fixed,
      'n_params': summary['num_params_non_embedding'],
      'n_params_total': summary['num_params'],
      'tokens': tokens,
      'examples': summary['train_examples'],
      'steps': summary['step'],
      'mean_tokens_per_example': mean_seq,
      'model': {key: model[key] for key in (
          'num_layers', 'num_heads', 'embed_dim', 'mlp_dim')},
      'flops': train_flops(model, tokens, mean_seq),
      'final_val_loss': summary['final_val_loss'],
      'final_val_accuracy': summary['final_val_accuracy'],
      'best_val_loss': summary['best_val_loss'],
      'best_val_accuracy': summary['best_val_accuracy'],
      'wall_time_s': wall_time_s,
      'resumed': resumed,
      'device': summary['device'],
  }


def _flag_value(value: Any) -> str:
  return repr(value) if isinstance(value, float) else str(value)


def load_splits(data_config: ml_collections.ConfigDict, loaded: Splits
                ) -> dict[str, input_pipeline.Split]:
  """`data_sources.load_splits(data_config)`, loaded once into `loaded`."""
  key = (data_config.source, data_config.tfds_data_dir,
         data_config.validation_size, data_config.counterfactual_copies,
         data_config.generated_counterfactuals, data_config.generated_edit,
         data_config.generated_unit)
  if key not in loaded:
    loaded[key] = data_sources.load_splits(data_config)
  return loaded[key]


def shared_tokenizer(config: ml_collections.ConfigDict, workdir: Path,
                     loaded: Splits) -> Path:
  """`<workdir>/tokenizer.json`, trained once on the whole training split.

  Every point tokenizes with it, so D counts the same units at every point;
  a point that trained its own on its subset would not. A path given as
  `--config.data.tokenizer_path` is used instead.
  """
  if config.data.tokenizer_path:
    return Path(config.data.tokenizer_path).resolve()
  path = workdir / TOKENIZER
  if not path.exists():
    print("training the sweep's tokenizer on the whole training split...",
          flush=True)
    texts = load_splits(config.data, loaded)['train'].texts
    partial = path.with_suffix('.partial')
    partial.write_text(input_pipeline.train_tokenizer(
        texts, config.data.vocab_size).to_str())
    partial.replace(path)
  return path.resolve()


def train_point(config_filename: str, config: ml_collections.ConfigDict,
                fixed: dict[str, Any], point: dict[str, Any], point_dir: Path,
                tokenizer: Path, loaded: Splits) -> float:
  """Trains one point, its output to its train.log; returns its wall time
  (seconds)."""
  overrides = {'data.tokenizer_path': str(tokenizer), **point}
  command = [sys.executable, '-m', 'sentiment_jax.main',
             f'--config={config_filename}', f'--workdir={point_dir}']
  command += [f'--config.{key}={_flag_value(value)}' for key, value in
              {**fixed, **overrides}.items()]
  run_config = points_lib.point_config(config, overrides)
  # Imported here, so that a bad config or sweep fails in seconds.
  from sentiment_jax import train  # pylint: disable=g-import-not-at-top
  point_dir.mkdir(parents=True, exist_ok=True)
  # A summary left by an earlier invocation must not pass for this one's.
  (point_dir / 'summary.json').unlink(missing_ok=True)
  started = time.perf_counter()
  with (open(point_dir / LOG, 'a') as log, contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log)):
    print(f'$ {shlex.join(command)}', flush=True)
    try:
      train.train_and_evaluate(run_config, str(point_dir),
                               load_splits(run_config.data, loaded))
    except errors.UserError as e:
      print(f'error: {e}')
      raise SweepError(f'{point_dir.name} failed: {e}; full log in '
                       f'{point_dir / LOG}') from None
  return time.perf_counter() - started


def proxies(models: list[dict[str, Any]], grids: dict[str, list[float]],
            tuning: Tuning) -> list[dict[str, Any]]:
  """The proxy run of every model at every rate of its grid."""
  return [proxy(m, rate, tuning)
          for m in models for rate in grids[point_name(m)]]


def proxy(model: dict[str, Any], rate: float, tuning: Tuning
          ) -> dict[str, Any]:
  """The overrides of `model`'s proxy run at learning rate `rate`."""
  return {**model, **tuning.proxy, 'train.learning_rate': rate}


def tune(config_filename: str, config: ml_collections.ConfigDict,
         fixed: dict[str, Any], models: list[dict[str, Any]],
         grids: dict[str, list[float]], tuning: Tuning, workdir: Path,
         tokenizer: Path, loaded: Splits, timed: eta.Timed
         ) -> dict[str, float]:
  """Each model's learning rate: trains the proxies of `grids` (extended past
  an edge that wins, `tuning.max_extensions` times at most) and returns the
  rate of each model's lowest proxy validation loss, by model name."""
  for extension in range(tuning.max_extensions + 1):
    tuned = run_points('tuning', config_filename, config, fixed,
                       proxies(models, grids, tuning), workdir / 'tuning',
                       workdir / TUNING_RESULTS, tokenizer, loaded, timed)
    losses = {point_name(m): {
        rate: tuned[point_name(proxy(m, rate, tuning))]['best_val_loss']
        for rate in grids[point_name(m)]} for m in models}
    beyond = {name: points_lib.beyond_edge(losses[name]) for name in grids}
    beyond = {name: rate for name, rate in beyond.items() if rate}
    if extension == tuning.max_extensions or not beyond:
      break
    for name, rate in beyond.items():
      print(f'{name}: best proxy at the edge of {sorted(grids[name])}; '
            f'trying {rate}', flush=True)
      grids[name].append(rate)
  rates = {}
  for name, trials in losses.items():
    rates[name] = min(trials, key=trials.get)
    print(f'tuned {name}: learning rate {rates[name]} (proxy val loss '
          + ', '.join(f'{r}: {trials[r]:.4f}' for r in sorted(trials)) + ')',
          flush=True)
  return rates


def run_sweep(config_filename: str, config: ml_collections.ConfigDict,
              fixed: dict[str, Any], points: list[dict[str, Any]],
              workdir: Path, tuning: Tuning | None = None) -> None:
  """Tunes each model's learning rate if asked, then trains the points not
  yet in results.jsonl, appending each when done."""
  check_points(points, config, fixed)
  if tuning:
    clash = [p for p in points if 'train.learning_rate' in {**fixed, **p}]
    if clash:
      raise SweepError(f'{point_name(clash[0]) or "--config"} sets '
                       'train.learning_rate, which get_tuning() chooses; '
                       'drop one of them')
    models = [dict(m) for m in dict.fromkeys(
        tuple(model_of(p).items()) for p in points)]
    grids = {point_name(m): list(tuning.rates(m)) for m in models}
    check_points(proxies(models, grids, tuning), config, fixed)
  workdir.mkdir(parents=True, exist_ok=True)
  loaded: Splits = {}
  # The tuning runs' times go into the sweep's ETA: they span every model
  # size, which the sweep's first runs (the smallest model) do not, and an
  # ETA fitted on those alone put a 1-hour sweep at 20 hours.
  timed: eta.Timed = {}
  tokenizer = shared_tokenizer(config, workdir, loaded)
  if tuning:
    rates = tune(config_filename, config, fixed, models, grids, tuning,
                 workdir, tokenizer, loaded, timed)
    points = [{**p, 'train.learning_rate': rates[point_name(model_of(p))]}
              for p in points]
  run_points('sweep', config_filename, config, fixed, points, workdir,
             workdir / RESULTS, tokenizer, loaded, timed)


def run_points(label: str, config_filename: str,
               config: ml_collections.ConfigDict, fixed: dict[str, Any],
               points: list[dict[str, Any]], root: Path, results: Path,
               tokenizer: Path, loaded: Splits, timed: eta.Timed
               ) -> dict[str, dict[str, Any]]:
  """Trains each point not yet in `results` in `root/<name>`; returns every
  point's record by name. Adds each run's cost and time to `timed`, the
  recorded ones' too (but for a resumed run's part time), and prints an ETA
  fitted on all of `timed`."""
  recorded = {r.get('name'): r for r in read_results(results)}
  for name in (point_name(p) for p in points):
    if name in recorded and recorded[name].get('config_overrides') != fixed:
      raise SweepError(
          f'{results} has {name} trained with --config overrides '
          f'{recorded[name].get("config_overrides")}, not {fixed}; use '
          'another --workdir')
  pending = [point_name(p) for p in points if point_name(p) not in recorded]
  print(f'{label} of {len(points)} points in {root}: {len(pending)} to train, '
        f'{len(points) - len(pending)} already in {results.name}', flush=True)
  costs = {point_name(p): eta.relative_cost(config, p) for p in points}
  timed.update({name: (costs[name], recorded[name]['wall_time_s'])
                for name in costs if name in recorded
                and not recorded[name].get('resumed')})
  start = time.perf_counter()
  for number, point in enumerate(points, start=1):
    name = point_name(point)
    prefix = f'{label} run {number} of {len(points)}'
    if name in recorded:
      print(f'{prefix}: {name} already in {results.name}, skipped', flush=True)
      continue
    point_dir = root / name
    resumed = (point_dir / 'checkpoints').is_dir()
    print(f'{prefix}: {name}{" (resuming)" if resumed else ""}; log in '
          f'{point_dir / LOG}', flush=True)
    seconds = train_point(config_filename, config, fixed, point, point_dir,
                          tokenizer, loaded)
    record = recorded[name] = make_record(
        point, fixed, json.loads((point_dir / 'summary.json').read_text()),
        json.loads((point_dir / 'config.json').read_text()), seconds, resumed)
    with open(results, 'a') as f:
      f.write(json.dumps(record) + '\n')
    if not resumed:
      timed[name] = (costs[name], seconds)
    pending.remove(name)
    left = eta.eta_seconds(list(timed.values()),
                           [costs[n] for n in pending])
    eta_text = 'after three runs' if left is None else eta.duration(left)
    print(f'{prefix}: {name} done in {eta.duration(seconds)}: '
          f'N={record["n_params"]:,} D={record["tokens"]:.3g} tokens, val loss '
          f'{record["final_val_loss"]:.4f}, accuracy '
          f'{record["final_val_accuracy"]:.4f} | {label} '
          f'{eta.duration(time.perf_counter() - start)} so far, '
          f'{len(pending)} to go, ETA {eta_text}', flush=True)
  print(f'{label} done: {len(points)} points in {results}', flush=True)
  return recorded


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  config_filename = config_flags.get_config_filename(flags.FLAGS['config'])
  fixed = dict(config_flags.get_override_values(flags.FLAGS['config']))
  workdir = Path(_WORKDIR.value)
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # Orbax and TFDS log every file.
  xla_cache.enable()
  try:
    points, tuning = load_sweep(config_filename)
    run_sweep(config_filename, _CONFIG.value, fixed, points, workdir, tuning)
  except (SweepError, errors.UserError, OSError) as e:
    sys.exit(f'error: {e}')
  except KeyboardInterrupt:
    sys.exit('interrupted; run the same command again to resume')


if __name__ == '__main__':
  app.run(main)
