"""The train state and the jitted data-parallel train steps.

`create_train_state` builds params and AdamW; `train_step` (classification),
`mlm_step` (masked-token pretraining) and `electra_step` (replaced-token
detection) are pure updates; `jit_train_step` jits one once on the mesh with
the state donated. The training loop
(`train`) and the side-by-side benchmark (`review/`) both run exactly
`train_step`; `pretrain` runs `mlm_step` or `electra_step`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct
from flax.training import train_state

from sentiment_jax import metrics, models, sharding

# Dropout masks come from the 'rbg' generator (XLA's RngBitGenerator): on CPU
# it made the base config's dropout-0.1 train step 8% faster than threefry.
DROPOUT_RNG_IMPL = 'rbg'


class TrainState(train_state.TrainState):
  """Flax TrainState plus the dropout root key data (`[4]` uint32, 'rbg'),
  and optionally an exponential moving average of the params (`ema_params`,
  None when off) that evaluation then uses."""

  rng: jax.Array
  ema_params: Any = None
  ema_decay: float = struct.field(pytree_node=False, default=0.0)

  def eval_params(self) -> Any:
    return self.params if self.ema_params is None else self.ema_params


def create_train_state(rng: jax.Array, config: ml_collections.ConfigDict,
                       model: nn.Module, total_steps: int,
                       optimizer: ml_collections.ConfigDict | None = None
                       ) -> TrainState:
  """Initialises params and AdamW (warmup + cosine decay, global-norm clip).

  The schedule and optimizer settings come from `optimizer` (a block with
  `learning_rate`, `warmup_fraction`, `weight_decay` and `grad_clip`), by
  default `config.train`; pretraining passes `config.pretrain`.
  """
  t = optimizer or config.train
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, t.learning_rate, max(1, int(t.warmup_fraction * total_steps)),
      max(2, total_steps))
  # Decay matrices only: biases and LayerNorm scales are not regularised. A
  # function of the tree, so the same optimizer serves any params tree.
  def decay_mask(params):
    return jax.tree_util.tree_map(lambda p: p.ndim >= 2, params)

  tx = optax.chain(
      optax.clip_by_global_norm(t.grad_clip),
      optax.adamw(schedule, b2=0.98, weight_decay=t.weight_decay,
                  mask=decay_mask))

  # One jitted program, not op-by-op dispatch: for base on 2 cores 2.2 s
  # instead of 3.0 s, the same state bit for bit, and the CLI's compilation
  # cache keeps it.
  @jax.jit
  def build(rng: jax.Array) -> TrainState:
    init_rng, dropout_seed = jax.random.split(rng)
    dropout_rng = jax.random.key_data(jax.random.key(
        jax.random.randint(dropout_seed, (), 0, 2**31 - 1),
        impl=DROPOUT_RNG_IMPL))
    tokens = jnp.zeros((1, config.data.max_len), jnp.int32)
    params = model.init(init_rng, tokens)['params']
    return TrainState.create(apply_fn=model.apply, params=params, tx=tx,
                             rng=dropout_rng)

  return build(rng)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example loss. logits: `[batch, classes]`; labels: `[batch]`."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def masked_token_loss(logits: jax.Array, batch: dict[str, jax.Array]
                      ) -> tuple[jax.Array, jax.Array]:
  """Mean loss and accuracy over the weighted prediction slots.

  logits: `[batch, predictions, vocab]`; `batch['targets']` and
  `batch['weights']`: `[batch, predictions]` (weight 0 = an unused slot).
  """
  weights = batch['weights']
  count = jnp.maximum(weights.sum(), 1)
  losses = optax.softmax_cross_entropy_with_integer_labels(
      logits, batch['targets'])
  correct = logits.argmax(-1) == batch['targets']
  return (losses * weights).sum() / count, (correct * weights).sum() / count


def _update(state: TrainState, loss_fn
            ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One AdamW step on `loss_fn(params, dropout_rng) -> (loss, metrics)`,
  `metrics` holding at least `accuracy`."""
  dropout_rng = jax.random.fold_in(
      jax.random.wrap_key_data(state.rng, impl=DROPOUT_RNG_IMPL), state.step)
  (loss, step_metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params, dropout_rng)
  new_state = state.apply_gradients(grads=grads)
  if state.ema_params is not None:
    # Warm-up: early on the average spans fewer steps, so the random init
    # does not dominate it (TensorFlow's ExponentialMovingAverage rule).
    decay = jnp.minimum(state.ema_decay, (1 + state.step) / (10 + state.step))
    new_state = new_state.replace(ema_params=jax.tree_util.tree_map(
        lambda average, param: decay * average + (1 - decay) * param,
        state.ema_params, new_state.params))
  return new_state, {
      'loss': loss,
      **step_metrics,
      'grad_norm': optax.tree.norm(grads),
      'param_norm': optax.tree.norm(new_state.params),
  }


def pair_loss(logits: jax.Array, labels: jax.Array, partner: jax.Array
              ) -> jax.Array:
  """Mean over the rows that have their pair's other half in the batch of
  softplus(-(m - m_other)) for a positive row and softplus(m - m_other) for a
  negative one, m being the margin (positive logit minus negative): a
  logistic loss that the revision moves the margin the way its label does.

  logits: `[batch, classes]`; labels, partner: `[batch]` (-1 = none).
  """
  margin = logits[:, 1] - logits[:, 0]
  paired = partner >= 0
  gap = margin - margin[jnp.where(paired, partner, 0)]
  losses = jax.nn.softplus(-(2 * labels - 1) * gap)
  return jnp.where(paired, losses, 0).sum() / jnp.maximum(paired.sum(), 1)


def train_step(state: TrainState, batch: dict[str, jax.Array], *,
               label_smoothing: float = 0.0, pair_weight: float = 0.0,
               counterfactual_weight: float = 1.0
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One AdamW step on `{'tokens': [batch, seq], 'label': [batch]}`.

  With `label_smoothing` > 0 the targets are `optax.smooth_labels` of the
  one-hot labels; the logged loss is then against those targets. With a
  `'partner'` `[batch]` entry, a row whose pair's other half is in the batch
  weighs `counterfactual_weight` in the mean loss (others 1: a weight of 2
  is a second copy of the pair without its steps), and with `pair_weight`
  > 0, `pair_weight` times `pair_loss` joins the loss (and `pair_loss` the
  metrics).
  """

  def loss_fn(params, dropout_rng):
    logits = state.apply_fn({'params': params}, batch['tokens'],
                            rngs={'dropout': dropout_rng})
    accuracy = (metrics.decide(logits) == batch['label']).mean()
    if label_smoothing:
      targets = optax.smooth_labels(
          jax.nn.one_hot(batch['label'], logits.shape[-1]), label_smoothing)
      losses = optax.softmax_cross_entropy(logits, targets)
    else:
      losses = cross_entropy(logits, batch['label'])
    if counterfactual_weight != 1 and 'partner' in batch:
      losses *= jnp.where(batch['partner'] >= 0, counterfactual_weight, 1.0)
    loss = losses.mean()
    if pair_weight and 'partner' in batch:
      pairs = pair_loss(logits, batch['label'], batch['partner'])
      return loss + pair_weight * pairs, {'accuracy': accuracy,
                                          'pair_loss': pairs}
    return loss, {'accuracy': accuracy}

  return _update(state, loss_fn)


def mlm_step(state: TrainState, batch: dict[str, jax.Array]
             ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One AdamW step of a `MaskedLM` on a `mlm.mask_batch` batch: masked
  `tokens` `[batch, seq]`, and `positions`, `targets`, `weights`
  `[batch, predictions]`."""

  def loss_fn(params, dropout_rng):
    logits = state.apply_fn({'params': params}, batch['tokens'],
                            batch['positions'], rngs={'dropout': dropout_rng})
    loss, accuracy = masked_token_loss(logits, batch)
    return loss, {'accuracy': accuracy}

  return _update(state, loss_fn)


def replaced_token_losses(outputs: tuple[jax.Array, jax.Array, jax.Array],
                          batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
  """The generator's masked-token loss and accuracy, and the discriminator's
  loss and accuracy over real (non-padding) positions, of a
  `ReplacedTokenDetector`'s outputs on a `mlm.mask_batch` batch."""
  generator_logits, logits, replaced = outputs
  generator_loss, generator_accuracy = masked_token_loss(generator_logits,
                                                         batch)
  real = (batch['tokens'] != models.PAD_ID).astype(jnp.float32)
  count = jnp.maximum(real.sum(), 1)
  losses = optax.sigmoid_binary_cross_entropy(logits, replaced)
  correct = (logits > 0) == replaced
  return {'generator_loss': generator_loss,
          'generator_accuracy': generator_accuracy,
          'detector_loss': (losses * real).sum() / count,
          'accuracy': (correct * real).sum() / count}


def electra_step(state: TrainState, batch: dict[str, jax.Array], *,
                 detector_weight: float
                 ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One AdamW step of a `ReplacedTokenDetector` on a `mlm.mask_batch` batch:
  generator loss + `detector_weight` x detector loss (ELECTRA's sum; the
  detector's per-position loss is far smaller, hence its weight of ~50).
  The logged `accuracy` is the detector's."""

  def loss_fn(params, dropout_rng):
    outputs = state.apply_fn(
        {'params': params}, batch['tokens'], batch['positions'],
        batch['targets'], batch['weights'],
        rngs={'dropout': dropout_rng,
              'sample': jax.random.fold_in(dropout_rng, 1)})
    parts = replaced_token_losses(outputs, batch)
    return (parts['generator_loss'] + detector_weight * parts['detector_loss'],
            parts)

  return _update(state, loss_fn)


def jit_train_step(parallel: sharding.DataParallel, step=train_step):
  """`step` jitted on the mesh: state replicated (and donated), batch split."""
  return jax.jit(step,
                 in_shardings=(parallel.replicated, parallel.data),
                 out_shardings=(parallel.replicated, parallel.replicated),
                 donate_argnums=0)
