"""What a run directory holds and how runs agree with it.

A workdir explains itself: `config.json` (resolved config), `tokenizer.json`,
`checkpoints/{latest,best}` (and `{pretrain,encoder}` after `--mode=pretrain`), `metrics.jsonl`, `tensorboard/`, the eval and
plot outputs, and `calibration.json` once a temperature is fitted. This module checks a config against a workdir, reads and writes
the tokenizer, and restores checkpoints, falling back past a corrupt one.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp
import tokenizers

from sentiment_jax import calibration as calibration_lib, input_pipeline
from sentiment_jax.config_checks import flatten
from sentiment_jax.errors import ConfigError, WorkdirError

# Fields that fix the shapes of the params or the tokenization: a workdir run
# with other values cannot be resumed or evaluated with this config.
_IDENTITY_FIELDS = ('model', 'data.source', 'data.vocab_size', 'data.max_len',
                    'data.truncation')
# Fields that fix the trajectory: the batches, their order, the schedule, the
# optimizer, and which checkpoint is best. Resuming with another value would
# silently train a different run, so it is refused like an identity field.
TRAJECTORY_FIELDS = (
    'data.train_fraction', 'data.counterfactual_copies',
    'data.generated_counterfactuals', 'data.generated_edit',
    'data.generated_unit',
    'data.validation_size', 'data.batch_size',
    'data.pad_multiple', 'data.sort_chunk_batches', 'train.seed',
    'train.num_epochs', 'train.learning_rate', 'train.warmup_fraction',
    'train.weight_decay', 'train.grad_clip', 'train.eval_every_steps',
    'train.patience', 'train.init_from', 'train.label_smoothing',
    'train.ema_decay', 'train.pair_weight', 'train.counterfactual_weight')
# The same for a --mode=pretrain run: its batches, masks and schedule.
PRETRAIN_TRAJECTORY_FIELDS = ('data.pad_multiple', 'data.sort_chunk_batches',
                              'train.seed', 'pretrain')
# What fixes a pretrained encoder's meaning; a fine-tune must match it.
_ENCODER_FIELDS = ('data.max_len', 'data.truncation', 'model.num_layers',
                   'model.num_heads', 'model.embed_dim', 'model.mlp_dim',
                   'model.activation', 'model.ngram_buckets',
                   'model.ngram_max', 'model.ngram_dim',
                   'model.negation_scope', 'model.negation_flip',
                   'model.negation_window', 'model.silence_negators',
                   'model.contrast_scope', 'model.ngram_skip_negated')


def _get(config: dict, dotted: str) -> Any:
  for key in dotted.split('.'):
    config = config.get(key, {}) if isinstance(config, dict) else {}
  return config


def read_json(path: Path, fix: str) -> dict | None:
  """A run file's JSON content, or None when there is none. A corrupt file
  raises WorkdirError ending in `fix`."""
  if not path.exists():
    return None
  try:
    return json.loads(path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError):
    raise WorkdirError(f'{path} is corrupt; {fix}') from None


def saved_config(workdir: Path, fix: str) -> dict | None:
  """The workdir's `config.json` (see `read_json`)."""
  return read_json(workdir / 'config.json', fix)


def check_compatible(config: ml_collections.ConfigDict, workdir: Path,
                     trajectory_fields: tuple[str, ...] = TRAJECTORY_FIELDS
                     ) -> None:
  """Raises WorkdirError if `workdir` holds a run this config would change.

  Compares the identity and trajectory fields with the saved config.json. A
  field the saved run predates (absent there) is not compared.
  """
  saved = saved_config(workdir, f'delete {workdir} or use another --workdir')
  if saved is None:
    return
  current = json.loads(config.to_json())
  old, new = {}, {}
  for field in _IDENTITY_FIELDS + trajectory_fields:
    old.update(flatten(_get(saved, field), field))
    new.update(flatten(_get(current, field), field))
  _refuse_changes(old, new, f'{workdir} holds a run', 'this config')


def check_trajectory(saved: dict, current: dict, workdir: Path) -> None:
  """Refuses a checkpoint whose recorded trajectory differs from this run's.

  `saved` is the `trajectory` dict of the checkpoint's metadata: the step
  counts (which also change when the data changes) and TRAJECTORY_FIELDS.
  """
  _refuse_changes(saved, current, f'the checkpoint in {workdir} was trained',
                  'this run')


def _refuse_changes(old: dict[str, Any], new: dict[str, Any], before: str,
                    now: str) -> None:
  """Raises WorkdirError naming the first key (of both) whose value differs."""
  for key in sorted(old.keys() & new.keys()):
    if old[key] != new[key]:
      raise WorkdirError(
          f'{before} with {key}={old[key]!r} but {now} has {new[key]!r}; '
          'resuming would change that run, so pass a new --workdir')


def trajectory(config: ml_collections.ConfigDict, steps_per_epoch: int,
               total_steps: int,
               fields: tuple[str, ...] = TRAJECTORY_FIELDS) -> dict[str, Any]:
  """What fixes a run's trajectory, as recorded in each checkpoint."""
  current = json.loads(config.to_json())
  recorded = {}
  for field in fields:
    recorded.update(flatten(_get(current, field), field))
  return {'steps_per_epoch': steps_per_epoch, 'total_steps': total_steps,
          **recorded}


def check_is_dir(workdir: str | Path) -> Path:
  """`workdir` as a Path; WorkdirError if it is missing or not a directory."""
  workdir = Path(workdir)
  if workdir.is_file():
    raise WorkdirError(f'workdir {workdir} is a file, not a directory; pass '
                       'the directory of a trained run, e.g. runs/base')
  if not workdir.is_dir():
    raise WorkdirError(
        f'workdir {workdir} does not exist; train first with --mode=train or '
        'pass the --workdir of a trained run')
  return workdir


# What a run did before these fields existed: not today's default, which
# may have changed since (base turned negation scope and the pairs on).
_PREDATED = {'model.negation_scope': False, 'model.negation_flip': False,
             'model.negation_window': 0, 'model.silence_negators': False,
             'model.contrast_scope': False, 'model.ngram_skip_negated': False,
             'data.counterfactual_copies': 0,
             'data.generated_counterfactuals': 0.0, 'train.pair_weight': 0.0,
             'train.counterfactual_weight': 1.0}


def with_predated(saved: dict) -> dict:
  """A saved config with the `_PREDATED` fields it lacks set to what the run
  did without them."""
  filled = {group: dict(values) if isinstance(values, dict) else values
            for group, values in saved.items()}
  for dotted, value in _PREDATED.items():
    group, key = dotted.split('.')
    filled.setdefault(group, {}).setdefault(key, value)
  return filled


def _saved_run(workdir: Path) -> dict:
  """The config a trained run saved, `with_predated`; raises if none."""
  saved = saved_config(workdir, f'delete {workdir} and train again')
  if saved is None:
    raise WorkdirError(f'no trained run in {workdir} (no config.json); train '
                       'first with --mode=train or pass --workdir')
  return with_predated(saved)


def run_config(workdir: str | Path) -> ml_collections.ConfigDict:
  """The whole config a run saved, over `configs/base.py`'s defaults for the
  fields added to the code since it was trained (`with_predated` aside)."""
  from configs import base  # pylint: disable=g-import-not-at-top
  workdir = check_is_dir(workdir)
  config = base.get_config()
  config.update(_saved_run(workdir))
  return config


def load_run_config(config: ml_collections.ConfigDict, workdir: Path
                    ) -> ml_collections.ConfigDict:
  """The workdir's saved `data` and `model` settings on top of `config`.

  Eval and predict trust the run's own record of its model and data, so a run
  trained with overrides is evaluated without repeating them. Fields added
  to the code since the run was saved keep `config`'s defaults, except those
  whose default changed (`with_predated`).
  """
  saved = _saved_run(workdir)
  merged = ml_collections.ConfigDict(config.to_dict())
  merged.update({'data': saved.get('data', {}),
                 'model': saved.get('model', {})})
  merged.data.tfds_data_dir = config.data.tfds_data_dir
  return merged


def is_writer() -> bool:
  """Whether this process writes run files: only process 0 does.

  Orbax checkpoints are the exception; every process takes part in them.
  """
  return jax.process_index() == 0


def make_writable_dir(directory: Path) -> None:
  """Creates `directory` and checks a file can be written there (OSError)."""
  directory.mkdir(parents=True, exist_ok=True)
  probe = directory / f'.write_test.{os.getpid()}'
  probe.write_text('')
  probe.unlink()


def prepare(config: ml_collections.ConfigDict, workdir: Path) -> None:
  """Creates `workdir` (checking it is writable) and saves the config.

  Call `check_compatible` first: with it, the config saved here never differs
  from an earlier one in a field that changes the run.
  """
  try:
    make_writable_dir(workdir)
  except OSError as e:
    raise WorkdirError(f'cannot write to workdir {workdir} '
                       f'({e.strerror or e}); pass a writable --workdir'
                       ) from None
  if is_writer():
    write_atomic(workdir / 'config.json', config.to_json(indent=2))


def write_atomic(path: Path, text: str) -> None:
  """Writes via a temp file + rename, so a kill never leaves half a file."""
  tmp = path.with_suffix(path.suffix + '.tmp')
  tmp.write_text(text)
  os.replace(tmp, path)


def tokenizer_path(workdir: Path) -> Path:
  return workdir / 'tokenizer.json'


def load_tokenizer(workdir: Path) -> tokenizers.Tokenizer:
  path = tokenizer_path(workdir)
  if not path.exists():
    raise WorkdirError(f'no trained model in {workdir} (no tokenizer.json); '
                       'train first with --mode=train or pass --workdir')
  return input_pipeline.load_tokenizer(path)


def save_calibration(workdir: Path, calibration: calibration_lib.Calibration
                     ) -> None:
  write_atomic(workdir / 'calibration.json',
               json.dumps(calibration.to_json()))


def load_calibration(workdir: Path) -> calibration_lib.Calibration | None:
  """The run's fitted temperature, or None before one is fitted."""
  path = workdir / 'calibration.json'
  if not path.exists():
    return None
  try:
    return calibration_lib.Calibration.from_json(json.loads(path.read_text()))
  except (ValueError, KeyError, TypeError, UnicodeDecodeError):
    raise WorkdirError(f'{path} is corrupt; delete it and fit again with '
                       f'python -m analysis.main --workdir={workdir} '
                       '--studies=calibration') from None


def checkpoint_manager(workdir: Path, kind: str, max_to_keep: int
                       ) -> ocp.CheckpointManager:
  """`kind` is 'latest' (resume) or 'best' (eval/predict)."""
  return ocp.CheckpointManager(
      (workdir / 'checkpoints' / kind).absolute(),
      options=ocp.CheckpointManagerOptions(
          max_to_keep=max_to_keep, create=True,
          # Synchronous saves: a step's checkpoint is complete before the next
          # step runs, which the kill-and-resume guarantee relies on.
          enable_async_checkpointing=False))


def save(manager: ocp.CheckpointManager, step: int, state: Any,
         meta: dict) -> None:
  """Saves `state` and `meta` as `step`; raises if Orbax declines the save."""
  if step in manager.all_steps():
    return  # Re-reached after a resume: the content is identical.
  saved = manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
  if not saved:  # Orbax saves no step at or before its latest.
    raise WorkdirError(
        f'Orbax declined to save step {step} in {manager.directory}, which '
        f'already holds step {manager.latest_step()}; delete that directory '
        'or pass a new --workdir')


def restore(manager: ocp.CheckpointManager, target: Any,
            delete_unreadable: bool = False) -> tuple[Any, dict] | None:
  """Restores the newest readable checkpoint into the structure of `target`.

  A corrupt or partial checkpoint is skipped with a warning, falling back to
  the one before. Training passes `delete_unreadable=True` so that it can save
  that step again; eval and predict never delete anything. Returns None when
  there is none; raises WorkdirError when checkpoints exist but none can be
  read.
  """
  steps = sorted(manager.all_steps(), reverse=True)
  # Arrays restore with the target's sharding (replicated for training).
  abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
  for step in steps:
    try:
      restored = manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract),
          meta=ocp.args.JsonRestore()))
      return restored['state'], restored['meta']
    except Exception as e:  # Orbax raises many types for damaged files.
      logging.warning('checkpoint %d in %s is unreadable (%s: %s); %sfalling '
                      'back to the previous one', step, manager.directory,
                      type(e).__name__, (str(e).splitlines() or [''])[0][:200],
                      'deleting it and ' if delete_unreadable else '')
      if delete_unreadable:
        manager.delete(step)
  if steps:
    raise WorkdirError(f'no readable checkpoint in {manager.directory}; '
                       'delete it and train again')
  return None


def check_init_from(config: ml_collections.ConfigDict) -> tokenizers.Tokenizer:
  """The tokenizer of the pretraining run `config.train.init_from`, once it
  is known to hold an encoder this config's model can load."""
  source = Path(config.train.init_from)
  where = f'train.init_from={source}'
  if config.data.tokenizer_path:
    raise ConfigError(f'{where} brings its own tokenizer; leave '
                      'data.tokenizer_path empty')
  saved = saved_config(source, 'pretrain again')
  if saved is None:
    raise WorkdirError(f'{where}: no pretraining run there (no config.json); '
                       f'run --mode=pretrain --workdir={source} first')
  encoders = source / 'checkpoints' / 'encoder'
  if not encoders.is_dir() or not any(p.name.isdigit()
                                      for p in encoders.iterdir()):
    raise WorkdirError(f'{where}: no pretrained encoder saved yet (one is '
                       'saved per pretraining epoch); run --mode=pretrain '
                       'there until it finishes')
  current = json.loads(config.to_json())
  for field in _ENCODER_FIELDS:
    # {}: a field the pretraining run predates is not compared, as in
    # check_compatible.
    if _get(saved, field) not in ({}, _get(current, field)):
      raise WorkdirError(
          f'{where} was pretrained with {field}={_get(saved, field)!r} but '
          f'this config has {_get(current, field)!r}; pass '
          f'--config.{field}={_get(saved, field)} or pretrain again')
  return load_tokenizer(source)


def load_encoder(source: Path, target: Any) -> Any:
  """The newest readable encoder params saved by pretraining in `source`,
  restored into the structure (and sharding) of `target`."""
  restored = restore(checkpoint_manager(source, 'encoder', 1), target)
  if restored is None:
    raise WorkdirError(f'no pretrained encoder in {source}; run '
                       f'--mode=pretrain --workdir={source} first')
  return restored[0]
