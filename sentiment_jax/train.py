"""Training loop: runs the jitted step (`steps`), evaluates, checkpoints, logs.

`train_and_evaluate(config, workdir)` is the whole run. It resumes from the
latest checkpoint in `workdir`; a run killed at any point and restarted ends
bit-identical (on CPU) to an uninterrupted one, because the data order is a
pure function of (seed, epoch, step) and every checkpoint holds the params,
optimizer state, step, RNG, and early-stopping state. A resume whose config
or data would change the trajectory is refused (`workdir.TRAJECTORY_FIELDS`).
With `train.init_from`, the encoder (and tokenizer) start from a
`--mode=pretrain` run (`pretrain`); the head starts fresh.

Multi-process: every process runs this same function on the same global
batches; only process 0 writes run files (config, tokenizer, metrics,
TensorBoard, plots, summary), and all of them write the Orbax checkpoints.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import jax
import ml_collections
import tqdm
from sentiment_jax import (config_checks, data_sources, distributed,
                           input_pipeline, loop, metrics, models, plots,
                           sharding, steps, workdir as workdir_lib)


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str,
    splits: dict[str, input_pipeline.Split] | None = None
) -> steps.TrainState:
  """Trains (resuming if possible), evaluating and checkpointing on the way.

  `splits` is `data_sources.load_splits(config.data)` when the caller has
  already loaded it (a scaling sweep trains every point on one load); it is
  read, not changed.
  """
  workdir = Path(workdir)
  start_time = time.time()
  writer = workdir_lib.is_writer()
  config_checks.validate(config, jax.device_count())
  workdir_lib.check_compatible(config, workdir)
  d, t = config.data, config.train
  # Read the data before creating the workdir: a bad file leaves nothing.
  splits = dict(splits or distributed.process_0_first(
      lambda: data_sources.load_splits(d), 'data prepared'))
  # A bad tokenizer file or pretraining run fails here, before the workdir
  # exists. A pretrained encoder brings the tokenizer it was trained with.
  given = input_pipeline.load_tokenizer(
      d.tokenizer_path, fix='pass the tokenizer.json of a run or a sweep, or '
      "'' to train one") if d.tokenizer_path else None
  if t.init_from:
    given = workdir_lib.check_init_from(config)
  workdir_lib.prepare(config, workdir)
  splits['train'] = input_pipeline.subsample(splits['train'], d.train_fraction)
  tokenizer = loop.load_or_make_tokenizer(workdir, lambda: given or (
      input_pipeline.train_tokenizer(splits['train'].texts, d.vocab_size)))
  train_data, val_data = (
      input_pipeline.encode(tokenizer, splits[name].texts, d.max_len,
                            d.truncation) for name in ('train', 'validation'))
  say = tqdm.tqdm.write if writer else lambda message: None
  say(f'train: {len(train_data.ids)} reviews, {train_data.num_truncated} '
      f'truncated to {d.max_len} tokens; validation: {len(val_data.ids)}')

  steps_per_epoch = input_pipeline.num_train_batches(len(train_data.ids),
                                                     d.batch_size)
  if steps_per_epoch == 0:
    raise workdir_lib.ConfigError(f'data.batch_size={d.batch_size} exceeds the '
                                  f'{len(train_data.ids)} training examples')
  total_steps = t.num_epochs * steps_per_epoch
  eval_every = t.eval_every_steps or steps_per_epoch
  trajectory = workdir_lib.trajectory(config, steps_per_epoch, total_steps)
  model = models.Classifier(models.TransformerConfig.from_run_config(
      config, tokenizer.get_vocab_size(),
      input_pipeline.negation_ids(tokenizer)))
  parallel = sharding.DataParallel(
      models.Classifier(model.config.replace(deterministic=True)))
  step_fn = steps.jit_train_step(parallel, functools.partial(
      steps.train_step, label_smoothing=t.label_smoothing,
      pair_weight=t.pair_weight,
      counterfactual_weight=t.counterfactual_weight))
  state = parallel.replicate(initial_state(config, model, total_steps))

  latest = workdir_lib.checkpoint_manager(workdir, 'latest',
                                          t.keep_checkpoints)
  best = workdir_lib.checkpoint_manager(workdir, 'best', 1)
  progress = {'best_val_accuracy': -1.0, 'best_val_loss': float('inf'),
              'last_val': {}, 'evals_since_best': 0, 'stopped_early': False}
  restored = workdir_lib.restore(latest, state, delete_unreadable=True)
  if restored is not None:
    state, saved_progress = restored
    workdir_lib.check_trajectory(saved_progress.pop('trajectory', {}),
                                 trajectory, workdir)
    progress.update(saved_progress)
    say(f'resumed from step {int(state.step)} in {workdir}')
  step = int(state.step)
  log = loop.StepLog(workdir, step, total_steps, 'train')

  def save_latest(step: int) -> None:
    workdir_lib.save(latest, step, state,
                     {**progress, 'trajectory': trajectory})

  def evaluate_and_checkpoint(step: int) -> None:
    logits = parallel.logits(state.eval_params(), val_data,
                             batch_size=d.eval_batch_size,
                             pad_multiple=d.pad_multiple, max_len=d.max_len)
    scores = metrics.classification_metrics(
        logits=logits, labels=splits['validation'].labels)
    val = {'loss': scores['log_loss'], 'accuracy': scores['accuracy']}
    improved = val['accuracy'] > progress['best_val_accuracy']
    if improved:
      progress.update(best_val_accuracy=val['accuracy'], evals_since_best=0)
      workdir_lib.save(best, step, {'params': state.eval_params()},
                       {'step': step, 'val_accuracy': val['accuracy']})
    else:
      progress['evals_since_best'] += 1
    progress['best_val_loss'] = min(progress['best_val_loss'], val['loss'])
    progress['last_val'] = val
    if t.patience and progress['evals_since_best'] >= t.patience:
      progress['stopped_early'] = True
    log.write(step, {f'val/{k}': v for k, v in val.items()})
    say(f'step {step}: val loss {val["loss"]:.4f} accuracy '
        f'{val["accuracy"]:.4f}{" (best)" if improved else ""}')
    save_latest(step)

  try:
    while step < total_steps and not progress['stopped_early']:
      epoch, index = divmod(step, steps_per_epoch)
      batches = input_pipeline.train_batches(
          train_data, splits['train'].labels, batch_size=d.batch_size,
          seed=t.seed, epoch=epoch, pad_multiple=d.pad_multiple,
          max_len=d.max_len, chunk_batches=d.sort_chunk_batches, start=index,
          partner=splits['train'].partner)
      for batch in batches:
        state, step_metrics = step_fn(state, parallel.shard(batch,
                                                            tuple(batch)))
        step += 1
        log.add(step, step_metrics, batch['tokens'])
        if step % t.log_every_steps == 0 or step % eval_every == 0:
          log.flush()
        if step % eval_every == 0 or step == total_steps:
          evaluate_and_checkpoint(step)
          log.restart_clock()
          if progress['stopped_early']:
            say(f'early stop at step {step}: no validation improvement in '
                f'{t.patience} evaluations')
            break
        elif step % t.checkpoint_every_steps == 0:
          save_latest(step)
    log.flush()
  finally:
    log.close()
    latest.wait_until_finished()
    best.wait_until_finished()
  seconds = time.time() - start_time
  if writer:
    plots.training_curves(log.records(), workdir / 'curves.png')
    write_summary(workdir, state, step, steps_per_epoch, d.batch_size,
                  train_data, progress, seconds)
  say(f'training took {seconds:.1f} s')
  return state


def initial_state(config: ml_collections.ConfigDict, model: models.Classifier,
                  total_steps: int) -> steps.TrainState:
  """The step-0 state: fresh, or with `train.init_from`'s pretrained encoder
  in place of the fresh one (the head and optimizer state stay fresh); with
  `train.ema_decay`, the moving average starts from these params."""
  t = config.train
  state = steps.create_train_state(jax.random.PRNGKey(t.seed), config, model,
                                   total_steps)
  if t.init_from:
    encoder = workdir_lib.load_encoder(Path(t.init_from),
                                       state.params['encoder'])
    state = state.replace(params={**state.params, 'encoder': encoder})
  if t.ema_decay:
    state = state.replace(ema_params=state.params, ema_decay=t.ema_decay)
  return state


def write_summary(workdir: Path, state: steps.TrainState, step: int,
                  steps_per_epoch: int, batch_size: int,
                  train_data: input_pipeline.Encoded, progress: dict,
                  seconds: float) -> None:
  """summary.json: what the run trained on and reached (the sweep reads it)."""
  total_params, non_embedding = models.count_params(state.params)
  summary = {
      'step': step, 'steps_per_epoch': steps_per_epoch,
      'num_params': total_params, 'num_params_non_embedding': non_embedding,
      # Real (non-padding) tokens trained on: the examples the steps consumed
      # (each epoch drops its partial batch) at the split's mean length.
      'train_tokens': float(train_data.lengths.mean()) * step * batch_size,
      'train_examples': len(train_data.ids),
      'best_val_accuracy': progress['best_val_accuracy'],
      'best_val_loss': progress['best_val_loss'],
      'final_val_accuracy': progress['last_val'].get('accuracy'),
      'final_val_loss': progress['last_val'].get('loss'),
      'stopped_early': progress['stopped_early'],
      'wall_seconds_this_invocation': seconds,
      'device': f'{jax.devices()[0].device_kind} x{jax.device_count()}',
      'num_processes': jax.process_count(),
  }
  workdir_lib.write_atomic(workdir / 'summary.json',
                           json.dumps(summary, indent=2))
