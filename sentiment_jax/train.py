"""Training loop: data-parallel jitted steps, evaluation, checkpoints, logs.

`train_and_evaluate(config, workdir)` is the whole run. It resumes from the
latest checkpoint in `workdir`; a run killed at any point and restarted ends
bit-identical (on CPU) to an uninterrupted one, because the data order is a
pure function of (seed, epoch, step) and every checkpoint holds the params,
optimizer state, step, RNG, and early-stopping state.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib
import ml_collections
import numpy as np
import optax
import tensorboardX
import tqdm
from flax.training import train_state
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sentiment_jax import input_pipeline, models, workdir as workdir_lib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top


# Dropout masks come from the 'rbg' generator (XLA's RngBitGenerator): on CPU
# it made the base config's dropout-0.1 train step 8% faster than threefry.
DROPOUT_RNG_IMPL = 'rbg'


class TrainState(train_state.TrainState):
  """Flax TrainState plus the dropout root key data (`[4]` uint32, 'rbg')."""

  rng: jax.Array


class NonFiniteLossError(RuntimeError):
  """The loss became NaN or inf."""


def model_config(config: ml_collections.ConfigDict, vocab_size: int
                 ) -> models.TransformerConfig:
  """Builds the model hyper-parameters from the run config and the vocab."""
  m = config.model
  return models.TransformerConfig(
      vocab_size=vocab_size, max_len=config.data.max_len,
      num_layers=m.num_layers, num_heads=m.num_heads, embed_dim=m.embed_dim,
      mlp_dim=m.mlp_dim, dropout_rate=m.dropout_rate,
      attention_dropout_rate=m.attention_dropout_rate, pooling=m.pooling,
      activation=m.activation, dtype=jnp.dtype(m.dtype))


def create_train_state(rng: jax.Array, config: ml_collections.ConfigDict,
                       model: nn.Module, total_steps: int) -> TrainState:
  """Initialises params and AdamW (warmup + cosine decay, global-norm clip)."""
  init_rng, dropout_seed = jax.random.split(rng)
  dropout_rng = jax.random.key_data(jax.random.key(
      jax.random.randint(dropout_seed, (), 0, 2**31 - 1),
      impl=DROPOUT_RNG_IMPL))
  tokens = jnp.zeros((1, config.data.max_len), jnp.int32)
  params = jax.jit(model.init)(init_rng, tokens)['params']  # jit: ~5 s faster.
  t = config.train
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, t.learning_rate, max(1, int(t.warmup_fraction * total_steps)),
      max(2, total_steps))
  # Decay matrices only: biases and LayerNorm scales are not regularised.
  decay_mask = jax.tree_util.tree_map(lambda p: p.ndim >= 2, params)
  tx = optax.chain(
      optax.clip_by_global_norm(t.grad_clip),
      optax.adamw(schedule, b2=0.98, weight_decay=t.weight_decay,
                  mask=decay_mask))
  return TrainState.create(apply_fn=model.apply, params=params, tx=tx,
                           rng=dropout_rng)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example loss. logits: `[batch, classes]`; labels: `[batch]`."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def train_step(state: TrainState, batch: dict[str, jax.Array]
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One AdamW step on `{'tokens': [batch, seq], 'label': [batch]}`."""
  dropout_rng = jax.random.fold_in(
      jax.random.wrap_key_data(state.rng, impl=DROPOUT_RNG_IMPL), state.step)

  def loss_fn(params):
    logits = state.apply_fn({'params': params}, batch['tokens'],
                            rngs={'dropout': dropout_rng})
    return cross_entropy(logits, batch['label']).mean(), logits

  (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  new_state = state.apply_gradients(grads=grads)
  metrics = {
      'loss': loss,
      'accuracy': (logits.argmax(-1) == batch['label']).mean(),
      'grad_norm': optax.tree.norm(grads),
      'param_norm': optax.tree.norm(new_state.params),
  }
  return new_state, metrics


class Parallel:
  """A 1-D data-parallel mesh over all devices and the jitted steps on it.

  Params are replicated, batches are split along 'data'. Multi-host: after
  `jax.distributed.initialize()`, every host builds the same global batch (the
  order is deterministic) and contributes its contiguous slice.
  """

  def __init__(self, eval_model: nn.Module):
    """`eval_model` is the deterministic model `eval_step` applies."""
    self.mesh = Mesh(np.asarray(jax.devices()), ('data',))
    self.replicated = NamedSharding(self.mesh, P())
    self.data = NamedSharding(self.mesh, P('data'))
    self.train_step = jax.jit(
        train_step, in_shardings=(self.replicated, self.data),
        out_shardings=(self.replicated, self.replicated), donate_argnums=0)

    def eval_step(params: Any, batch: dict[str, jax.Array]) -> jax.Array:
      """Float32 logits `[batch, classes]` for `{'tokens': [batch, seq]}`."""
      return eval_model.apply({'params': params}, batch['tokens'])

    self.eval_step = jax.jit(eval_step,
                             in_shardings=(self.replicated, self.data),
                             out_shardings=self.replicated)

  def shard(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    out = {}
    for key in ('tokens', 'label'):
      value = batch[key]
      per_host = len(value) // jax.process_count()
      local = value[jax.process_index() * per_host:][:per_host]
      out[key] = jax.make_array_from_process_local_data(
          self.data, local, value.shape)
    return out


def predict_logits(parallel: Parallel, params: Any,
                   encoded: input_pipeline.Encoded, batch_size: int,
                   pad_multiple: int, max_len: int,
                   progress: str | None = None) -> np.ndarray:
  """Logits `[n, classes]` for every encoded text, in input order."""
  # Few texts (predict) get a small batch, not one padded with filler rows;
  # it stays a multiple of the device count for the data sharding.
  devices = jax.device_count()
  batch_size = min(batch_size, -(-len(encoded.ids) // devices) * devices)
  logits = np.zeros((len(encoded.ids), 2), np.float32)
  labels = np.zeros(len(encoded.ids), np.int32)
  batches = input_pipeline.eval_batches(encoded, labels, batch_size=batch_size,
                                        pad_multiple=pad_multiple,
                                        max_len=max_len)
  total = -(-len(encoded.ids) // batch_size)
  for batch in tqdm.tqdm(batches, total=total, desc=progress, leave=False,
                         disable=progress is None):
    out = np.asarray(parallel.eval_step(params, parallel.shard(batch)))
    real = batch['weight'] > 0
    logits[batch['index'][real]] = out[real]
  return logits


def validation_metrics(logits: np.ndarray, labels: np.ndarray
                       ) -> dict[str, float]:
  loss = float(np.asarray(cross_entropy(jnp.asarray(logits),
                                        jnp.asarray(labels))).mean())
  return {'loss': loss, 'accuracy': float((logits.argmax(-1) == labels).mean())}


class MetricsLog:
  """Scalars to TensorBoard (tensorboardX) and one JSON line per record."""

  def __init__(self, workdir: Path, resume_step: int):
    self.path = workdir / 'metrics.jsonl'
    # Drop records past the restored step: the resumed run rewrites them.
    if self.path.exists():
      kept = [line for line in self.path.read_text().splitlines()
              if line and json.loads(line)['step'] <= resume_step]
      workdir_lib.write_atomic(self.path, ''.join(l + '\n' for l in kept))
    self.file = open(self.path, 'a')
    self.writer = tensorboardX.SummaryWriter(str(workdir / 'tensorboard'))

  def write(self, step: int, scalars: dict[str, float]) -> None:
    for name, value in scalars.items():
      self.writer.add_scalar(name, value, step)
    self.file.write(json.dumps({'step': step, **scalars}) + '\n')
    self.file.flush()

  def close(self) -> None:
    self.writer.close()
    self.file.close()


def plot_curves(metrics_path: Path, out_path: Path) -> None:
  """Saves loss and accuracy curves (train and validation) as a PNG."""
  records = [json.loads(l) for l in metrics_path.read_text().splitlines() if l]
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  for ax, metric in zip(axes, ('loss', 'accuracy')):
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
  fig.tight_layout()
  fig.savefig(out_path, dpi=100)
  plt.close(fig)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str
                       ) -> TrainState:
  """Trains (resuming if possible), evaluating and checkpointing on the way."""
  workdir = Path(workdir)
  start_time = time.time()
  workdir_lib.validate(config, jax.device_count())
  workdir_lib.check_compatible(config, workdir)
  d, t = config.data, config.train
  # Read the data before creating the workdir: a bad file leaves nothing.
  splits = input_pipeline.load_splits(d)
  workdir_lib.prepare(config, workdir)
  splits['train'] = input_pipeline.subsample(splits['train'], d.train_fraction)
  tok_path = workdir_lib.tokenizer_path(workdir)
  if tok_path.exists():
    tokenizer = input_pipeline.load_tokenizer(tok_path)
  else:
    tokenizer = input_pipeline.train_tokenizer(splits['train'].texts,
                                               d.vocab_size)
    workdir_lib.write_atomic(tok_path, tokenizer.to_str())
  train_data = input_pipeline.encode(tokenizer, splits['train'].texts,
                                     d.max_len, d.truncation)
  val_data = input_pipeline.encode(tokenizer, splits['validation'].texts,
                                   d.max_len, d.truncation)
  tqdm.tqdm.write(f'train: {len(train_data.ids)} reviews, '
                  f'{train_data.num_truncated} truncated to {d.max_len} tokens; '
                  f'validation: {len(val_data.ids)}')

  steps_per_epoch = input_pipeline.num_train_batches(len(train_data.ids),
                                                     d.batch_size)
  if steps_per_epoch == 0:
    raise workdir_lib.ConfigError(f'data.batch_size={d.batch_size} exceeds the '
                     f'{len(train_data.ids)} training examples')
  total_steps = t.num_epochs * steps_per_epoch
  eval_every = t.eval_every_steps or steps_per_epoch
  model = models.Classifier(model_config(config, tokenizer.get_vocab_size()))
  eval_model = models.Classifier(model.config.replace(deterministic=True))
  state = create_train_state(jax.random.PRNGKey(t.seed), config, model,
                             total_steps)
  parallel = Parallel(eval_model)
  state = jax.device_put(state, parallel.replicated)

  latest = workdir_lib.checkpoint_manager(workdir, 'latest',
                                          t.keep_checkpoints)
  best = workdir_lib.checkpoint_manager(workdir, 'best', 1)
  progress = {'best_val_accuracy': -1.0, 'best_val_loss': float('inf'),
              'last_val': {}, 'evals_since_best': 0, 'stopped_early': False}
  restored = workdir_lib.restore(latest, state, delete_unreadable=True)
  if restored is not None:
    state, saved_progress = restored
    progress.update(saved_progress)
    state = jax.device_put(state, parallel.replicated)
    tqdm.tqdm.write(f'resumed from step {int(state.step)} in {workdir}')
  step = int(state.step)
  log = MetricsLog(workdir, step)

  def evaluate_and_checkpoint(step: int) -> None:
    logits = predict_logits(parallel, state.params, val_data,
                            d.eval_batch_size, d.pad_multiple, d.max_len)
    val = validation_metrics(logits, splits['validation'].labels)
    improved = val['accuracy'] > progress['best_val_accuracy']
    if improved:
      progress.update(best_val_accuracy=val['accuracy'], evals_since_best=0)
      workdir_lib.save(best, step, {'params': state.params},
                       {'step': step, 'val_accuracy': val['accuracy']})
    else:
      progress['evals_since_best'] += 1
    progress['best_val_loss'] = min(progress['best_val_loss'], val['loss'])
    progress['last_val'] = val
    if t.patience and progress['evals_since_best'] >= t.patience:
      progress['stopped_early'] = True
    log.write(step, {f'val/{k}': v for k, v in val.items()})
    tqdm.tqdm.write(f'step {step}: val loss {val["loss"]:.4f} accuracy '
                    f'{val["accuracy"]:.4f}{" (best)" if improved else ""}')
    workdir_lib.save(latest, step, state, progress)

  bar = tqdm.tqdm(total=total_steps, initial=step, desc='train', unit='step',
                  dynamic_ncols=True)
  pending: list[tuple[int, dict]] = []
  window = {'examples': 0, 'tokens': 0, 'time': time.perf_counter()}
  try:
    while step < total_steps and not progress['stopped_early']:
      epoch, index = divmod(step, steps_per_epoch)
      batches = input_pipeline.train_batches(
          train_data, splits['train'].labels, batch_size=d.batch_size,
          seed=t.seed, epoch=epoch, pad_multiple=d.pad_multiple,
          max_len=d.max_len, chunk_batches=d.sort_chunk_batches, start=index)
      for batch in batches:
        state, metrics = parallel.train_step(state, parallel.shard(batch))
        step += 1
        pending.append((step, metrics))
        window['examples'] += len(batch['label'])
        window['tokens'] += int((batch['tokens'] != models.PAD_ID).sum())
        bar.update()
        if step % t.log_every_steps == 0 or step % eval_every == 0:
          _flush_train_metrics(pending, window, log, bar)
        if step % eval_every == 0 or step == total_steps:
          evaluate_and_checkpoint(step)
          window['time'] = time.perf_counter()  # Throughput excludes eval.
          if progress['stopped_early']:
            tqdm.tqdm.write(f'early stop at step {step}: no validation '
                            f'improvement in {t.patience} evaluations')
            break
        elif step % t.checkpoint_every_steps == 0:
          workdir_lib.save(latest, step, state, progress)
    if pending:
      _flush_train_metrics(pending, window, log, bar)
  finally:
    bar.close()
    log.close()
    latest.wait_until_finished()
    best.wait_until_finished()
  plot_curves(log.path, workdir / 'curves.png')
  seconds = time.time() - start_time
  total_params, non_embedding = models.count_params(state.params)
  summary = {
      'step': step, 'steps_per_epoch': steps_per_epoch,
      'num_params': total_params, 'num_params_non_embedding': non_embedding,
      # Real (non-padding) tokens trained on; the dropped partial batch of
      # each epoch makes this an overestimate by < 1 batch per epoch.
      'train_tokens': int(train_data.lengths.sum()) * step / steps_per_epoch,
      'train_examples': len(train_data.ids),
      'best_val_accuracy': progress['best_val_accuracy'],
      'best_val_loss': progress['best_val_loss'],
      'final_val_accuracy': progress['last_val'].get('accuracy'),
      'final_val_loss': progress['last_val'].get('loss'),
      'stopped_early': progress['stopped_early'],
      'wall_seconds_this_invocation': seconds,
      'device': f'{jax.devices()[0].device_kind} x{jax.device_count()}',
  }
  workdir_lib.write_atomic(workdir / 'summary.json',
                           json.dumps(summary, indent=2))
  tqdm.tqdm.write(f'training took {seconds:.1f} s')
  return state


def _flush_train_metrics(pending: list[tuple[int, dict]], window: dict,
                         log: MetricsLog, bar: tqdm.tqdm) -> None:
  """Logs the mean of pending step metrics; stops on a non-finite loss.

  Reading metrics only here (not every step) keeps dispatch asynchronous.
  """
  values = jax.device_get([m for _, m in pending])
  for (step, _), m in zip(pending, values):
    if not np.isfinite(m['loss']):
      raise NonFiniteLossError(
          f'loss is {m["loss"]} at step {step}; lower train.learning_rate or '
          'train.grad_clip, or check the data')
  mean = {f'train/{k}': float(np.mean([m[k] for m in values]))
          for k in values[0]}
  elapsed = time.perf_counter() - window['time']
  mean['train/examples_per_s'] = window['examples'] / elapsed
  mean['train/tokens_per_s'] = window['tokens'] / elapsed
  log.write(pending[-1][0], mean)
  bar.set_postfix(loss=f'{mean["train/loss"]:.4f}',
                  ex_s=f'{mean["train/examples_per_s"]:.0f}',
                  tok_s=f'{mean["train/tokens_per_s"]:.0f}')
  pending.clear()
  window.update(examples=0, tokens=0, time=time.perf_counter())
