"""Self-pretraining loop: masked-language-model training (BERT's, or ELECTRA's
replaced-token detection) of the encoder on the allowed corpus
(`mlm.corpus`), for a fine-tune to start from.

`pretrain(config, workdir)` is the whole run, with the machinery of
training: a progress bar, Orbax checkpoints in `checkpoints/pretrain` with
kill-and-resume (bit-identical on CPU: the batches and their masks are pure
functions of seed, epoch and step), `pretrain_metrics.jsonl` and
`tensorboard/pretrain`. After every epoch it scores masked-token loss and
accuracy (and ELECTRA's detector's) on the held-out corpus texts and saves
the encoder's params to `checkpoints/encoder`, which `train.init_from` loads.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np
import tokenizers
import tqdm

from sentiment_jax import (config_checks, data_sources, distributed,
                           input_pipeline, loop, mlm, models, pretrain_models,
                           sharding, steps, workdir as workdir_lib)
from sentiment_jax.errors import ConfigError

_MASK_KEYS = ('tokens', 'positions', 'targets', 'weights')
_HELD_OUT_MASK_SEED = 11  # The held-out texts get the same masks every eval.


def pretrain(config: ml_collections.ConfigDict, workdir: str
             ) -> steps.TrainState:
  """Pretrains (resuming if possible) and saves the encoder after each epoch."""
  workdir = Path(workdir)
  start_time = time.time()
  writer = workdir_lib.is_writer()
  config_checks.validate(config, jax.device_count())
  d, p, seed = config.data, config.pretrain, config.train.seed
  if not 0 < p.mask_rate < 1:
    raise ConfigError(f'pretrain.mask_rate={p.mask_rate} must be in (0, 1)')
  workdir_lib.check_compatible(config, workdir,
                               workdir_lib.PRETRAIN_TRAJECTORY_FIELDS)
  splits = distributed.process_0_first(
      lambda: data_sources.load_splits(d), 'data prepared')
  texts, held_out = mlm.corpus(splits, p.held_out_texts)
  given = input_pipeline.load_tokenizer(
      d.tokenizer_path, fix="pass a run's tokenizer.json, or '' to train one"
  ) if d.tokenizer_path else None
  workdir_lib.prepare(config, workdir)
  tokenizer = loop.load_or_make_tokenizer(workdir, lambda: mlm.with_mask_token(
      given or input_pipeline.train_tokenizer(texts, d.vocab_size)))
  vocab_size = tokenizer.get_vocab_size()
  train_data, held_data = (
      input_pipeline.encode(tokenizer, part, d.max_len, d.truncation)
      for part in (texts, held_out))
  say = tqdm.tqdm.write if writer else lambda message: None
  say(f'pretrain: {len(train_data.ids)} texts, '
      f'{int(train_data.lengths.sum())} tokens; held out: {len(held_data.ids)}')

  steps_per_epoch = input_pipeline.num_train_batches(len(train_data.ids),
                                                     p.batch_size)
  if steps_per_epoch == 0:
    raise ConfigError(f'pretrain.batch_size={p.batch_size} exceeds the '
                      f'{len(train_data.ids)} corpus texts')
  total_steps = p.num_epochs * steps_per_epoch
  eval_every = p.eval_every_steps or steps_per_epoch
  trajectory = workdir_lib.trajectory(
      config, steps_per_epoch, total_steps,
      workdir_lib.PRETRAIN_TRAJECTORY_FIELDS)
  model, eval_model, step = _objective(config, tokenizer)
  parallel = sharding.DataParallel(eval_model)
  step_fn = steps.jit_train_step(parallel, step)
  held_out_sums = _held_out_scorer(parallel, p.objective)
  state = parallel.replicate(steps.create_train_state(
      jax.random.PRNGKey(seed), config, model, total_steps, p))

  latest = workdir_lib.checkpoint_manager(workdir, 'pretrain',
                                          config.train.keep_checkpoints)
  encoder = workdir_lib.checkpoint_manager(workdir, 'encoder', 1)
  restored = workdir_lib.restore(latest, state, delete_unreadable=True)
  if restored is not None:
    state, meta = restored
    workdir_lib.check_trajectory(meta.get('trajectory', {}), trajectory, workdir)
    say(f'resumed from step {int(state.step)} in {workdir}')
  step = int(state.step)
  log = loop.StepLog(workdir, step, total_steps, 'pretrain',
                     'pretrain_metrics')
  held_out_batches = []
  for i, batch in enumerate(input_pipeline.eval_batches(
      held_data, np.zeros(len(held_data.ids), np.int32),
      batch_size=d.eval_batch_size, pad_multiple=d.pad_multiple,
      max_len=d.max_len)):
    masked = mlm.mask_batch(batch['tokens'], np.random.default_rng(
        [_HELD_OUT_MASK_SEED, i]), mask_rate=p.mask_rate, vocab_size=vocab_size)
    masked['weights'] *= batch['weight'][:, None]  # Filler rows count 0.
    held_out_batches.append(parallel.shard(masked, _MASK_KEYS))
  last = {}

  def evaluate_and_save(step: int) -> None:
    sums = jax.device_get([held_out_sums(state.params, batch)
                           for batch in held_out_batches])
    last.update({name: float(sum(s[name][0] for s in sums)
                             / sum(s[name][1] for s in sums))
                 for name in sums[0]})
    log.write(step, {f'held_out/{k}': v for k, v in last.items()})
    say(f'step {step}: held-out ' + ', '.join(
        f'{name} {value:.4f}' for name, value in sorted(last.items())))
    workdir_lib.save(encoder, step, state.params['encoder'],
                     {'step': step, 'held_out': last})
    workdir_lib.save(latest, step, state, {'trajectory': trajectory})

  no_labels = np.zeros(len(train_data.ids), np.int32)
  try:
    while step < total_steps:
      epoch, index = divmod(step, steps_per_epoch)
      batches = input_pipeline.train_batches(
          train_data, no_labels, batch_size=p.batch_size, seed=seed,
          epoch=epoch, pad_multiple=d.pad_multiple, max_len=d.max_len,
          chunk_batches=d.sort_chunk_batches, start=index)
      for batch in batches:
        masked = mlm.mask_batch(batch['tokens'], np.random.default_rng(
            [seed, epoch, step % steps_per_epoch]), mask_rate=p.mask_rate,
                                vocab_size=vocab_size)
        state, step_metrics = step_fn(state, parallel.shard(masked, _MASK_KEYS))
        step += 1
        log.add(step, step_metrics, batch['tokens'])
        if step % config.train.log_every_steps == 0 or step % eval_every == 0:
          log.flush()
        if step % eval_every == 0 or step == total_steps:
          evaluate_and_save(step)
          log.restart_clock()
        elif step % config.train.checkpoint_every_steps == 0:
          workdir_lib.save(latest, step, state, {'trajectory': trajectory})
    log.flush()
  finally:
    log.close()
    latest.wait_until_finished()
    encoder.wait_until_finished()
  seconds = time.time() - start_time
  if writer:
    workdir_lib.write_atomic(workdir / 'pretrain_summary.json', json.dumps({
        'step': step, 'steps_per_epoch': steps_per_epoch,
        'corpus_texts': len(train_data.ids),
        'corpus_tokens': int(train_data.lengths.sum()),
        'held_out_texts': len(held_data.ids),
        'held_out': last or None,
        'wall_seconds_this_invocation': seconds,
        'device': f'{jax.devices()[0].device_kind} x{jax.device_count()}',
    }, indent=2))
  say(f'pretraining took {seconds:.1f} s; fine-tune with '
      f'--config.train.init_from={workdir}')
  return state


def _objective(config: ml_collections.ConfigDict,
               tokenizer: tokenizers.Tokenizer):
  """(model, its deterministic twin, the unjitted step), by
  `pretrain.objective`."""
  p = config.pretrain
  encoder = models.TransformerConfig.from_run_config(
      config, tokenizer.get_vocab_size(),
      input_pipeline.negation_ids(tokenizer))
  if p.objective == 'mlm':
    make = lambda deterministic: pretrain_models.MaskedLM(
        encoder.replace(deterministic=deterministic),
        tied_decoder=p.tied_decoder)
    return make(False), make(True), steps.mlm_step
  width = p.generator_embed_dim  # 'electra' (config_checks.validate checks it).
  generator = encoder.replace(embed_dim=width, mlp_dim=4 * width, num_heads=1)
  make = lambda deterministic: pretrain_models.ReplacedTokenDetector(
      encoder.replace(deterministic=deterministic),
      generator.replace(deterministic=deterministic),
      len(input_pipeline.SPECIAL_TOKENS))
  return make(False), make(True), functools.partial(
      steps.electra_step, detector_weight=p.detector_weight)


def _held_out_scorer(parallel: sharding.DataParallel, objective: str):
  """Jitted `(params, batch) -> {metric: (sum, count)}` of the deterministic
  model on a masked batch: masked-token loss and accuracy (the generator's,
  for ELECTRA, which adds the detector's over real positions)."""
  eval_model = parallel.eval_model

  def sums(params, batch):
    slots = batch['weights'].sum()
    if objective == 'mlm':
      logits = eval_model.apply({'params': params}, batch['tokens'],
                                batch['positions'])
      loss, accuracy = steps.masked_token_loss(logits, batch)
      return {'loss': (loss * slots, slots),
              'accuracy': (accuracy * slots, slots)}
    outputs = eval_model.apply(
        {'params': params}, batch['tokens'], batch['positions'],
        batch['targets'], batch['weights'],
        rngs={'sample': jax.random.PRNGKey(_HELD_OUT_MASK_SEED)})
    parts = steps.replaced_token_losses(outputs, batch)
    real = (batch['tokens'] != models.PAD_ID).sum()
    return {'loss': (parts['generator_loss'] * slots, slots),
            'accuracy': (parts['generator_accuracy'] * slots, slots),
            'detector_loss': (parts['detector_loss'] * real, real),
            'detector_accuracy': (parts['accuracy'] * real, real)}

  return jax.jit(sums, in_shardings=(parallel.replicated, parallel.data),
                 out_shardings=parallel.replicated)
