"""The train step: every parameter learns, and sharding does not change results."""

import functools
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import tiny
from sentiment_jax import models, steps

from helpers import REPO, assert_params_close, cli_env

VOCAB = 60
NEGATION_IDS = ((5,), (9,), (7,), (8,))  # Stand-ins: random tokens have no words.
TOTAL_STEPS = 40

# One compilation for every test in this module (same shapes, same optimizer).
train_step = jax.jit(steps.train_step)


@pytest.fixture(scope='module')
def initial_state():
  """A fresh TrainState of the tiny model with dropout off."""
  config = tiny.get_config()
  config.model.dropout_rate = 0.0
  config.model.attention_dropout_rate = 0.0
  model = models.Classifier(
      models.TransformerConfig.from_run_config(config, VOCAB, NEGATION_IDS))
  return steps.create_train_state(jax.random.PRNGKey(0), config, model,
                                  TOTAL_STEPS)


def random_batch(seed: int, batch_size: int = 8, seq: int = 16) -> dict:
  rng = np.random.default_rng(seed)
  tokens = rng.integers(10, VOCAB, (batch_size, seq)).astype(np.int32)
  # A contrast, then a negation outside its span, in every row: every
  # scope's parameters get a gradient.
  tokens[:, 2], tokens[:, 5] = NEGATION_IDS[2][0], NEGATION_IDS[0][0]
  tokens[:, 12:] = models.PAD_ID
  return {'tokens': tokens,
          'label': rng.integers(0, 2, batch_size).astype(np.int32)}


def paired_batch() -> dict:
  """`random_batch(0)` with rows 0-1 and 4-5 the two halves of a pair."""
  return {**random_batch(0),
          'partner': np.array([1, 0, -1, -1, 5, 4, -1, -1], np.int32)}


def step_logits(state: steps.TrainState, batch: dict) -> jax.Array:
  """The logits the train step's loss sees at `state`, for `batch`."""
  return state.apply_fn({'params': state.params}, batch['tokens'],
                        rngs={'dropout': jax.random.PRNGKey(0)})


def test_train_step_changes_every_parameter_and_reports_finite_metrics(
    initial_state):
  # The warmup schedule starts at learning rate 0, so the first update is
  # zero by design; compare across the second step, the first with lr > 0.
  state, _ = train_step(initial_state, random_batch(0))
  before = jax.device_get(state.params)
  state, metrics = train_step(state, random_batch(1))
  after = jax.device_get(state.params)
  unchanged = [jax.tree_util.keystr(path) for (path, old), new in zip(
      jax.tree_util.tree_leaves_with_path(before),
      jax.tree_util.tree_leaves(after)) if np.array_equal(old, new)]
  assert not unchanged, f'parameters not updated: {unchanged}'
  assert int(state.step) == 2
  assert set(metrics) == {'loss', 'accuracy', 'grad_norm', 'param_norm'}
  for name, value in metrics.items():
    assert np.isfinite(value), name
  assert 0 <= metrics['accuracy'] <= 1 and metrics['grad_norm'] > 0


def test_dropout_masks_change_from_step_to_step():
  """The dropout key is folded with the step: reusing one key would train
  every step with the same mask. Same params and batch, steps 5 and 6."""
  config = tiny.get_config()
  config.model.dropout_rate = 0.5
  model = models.Classifier(
      models.TransformerConfig.from_run_config(config, VOCAB, NEGATION_IDS))
  state = steps.create_train_state(jax.random.PRNGKey(0), config, model,
                                   TOTAL_STEPS)
  batch = random_batch(0)
  step = jax.jit(steps.train_step)
  losses = [float(step(state.replace(step=s), batch)[1]['loss'])
            for s in (5, 6, 5)]
  assert losses[0] != losses[1]  # Another step, another mask.
  assert losses[0] == losses[2]  # The same step, the same mask: resumable.


def test_repeated_steps_fit_a_fixed_batch(initial_state):
  state, batch = initial_state, random_batch(0)
  losses = []
  for _ in range(TOTAL_STEPS):
    state, metrics = train_step(state, batch)
    losses.append(float(metrics['loss']))
  assert losses[-1] < 0.5 * losses[0]


def run_parallel_steps(tmp_path, num_devices: int) -> subprocess.Popen:
  env = cli_env(
      XLA_FLAGS=f'--xla_force_host_platform_device_count={num_devices}')
  return subprocess.Popen(
      [sys.executable, str(REPO / 'tests' / 'parallel_steps.py'),
       str(tmp_path / f'params_{num_devices}.npz')],
      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True)


def test_two_devices_match_one_device(tmp_path):
  # Both processes at once: two cores, and each is mostly import and compile.
  processes = {n: run_parallel_steps(tmp_path, n) for n in (1, 2)}
  for n, process in processes.items():
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, f'{n} devices:\n{stderr[-3000:]}'
  one = np.load(tmp_path / 'params_1.npz')
  two = np.load(tmp_path / 'params_2.npz')
  assert int(one['device_count']) == 1
  assert int(two['device_count']) == 2
  names = sorted(set(one.files) - {'device_count'})
  assert names == sorted(set(two.files) - {'device_count'})
  assert_params_close({n: two[n] for n in names}, {n: one[n] for n in names})


def test_label_smoothing_trains_towards_smoothed_targets(initial_state):
  batch = random_batch(0)
  smoothed = jax.jit(functools.partial(steps.train_step, label_smoothing=0.2))
  _, plain_metrics = train_step(initial_state, batch)
  _, metrics = smoothed(initial_state, batch)
  logits = step_logits(initial_state, batch)
  log_p = jax.nn.log_softmax(logits)
  picked = np.take_along_axis(log_p, batch['label'][:, None], 1)[:, 0]
  # Two classes: target 0.9 on the label and 0.1 on the other.
  expected = -(0.9 * picked + 0.1 * (log_p.sum(-1) - picked)).mean()
  assert float(metrics['loss']) == pytest.approx(float(expected), rel=1e-5)
  assert float(plain_metrics['loss']) == pytest.approx(float(-picked.mean()),
                                                       rel=1e-5)


def test_pair_loss_rewards_a_margin_gap_in_the_label_direction():
  margin = lambda *m: np.stack([np.zeros(len(m)), np.array(m)], 1)
  labels, partner = np.array([1, 0, 1]), np.array([1, 0, -1])
  loss = lambda *m: float(steps.pair_loss(margin(*m), labels, partner))
  assert loss(2.0, -2.0, 9.0) == pytest.approx(np.log1p(np.exp(-4.0)))
  assert loss(-2.0, 2.0, 9.0) == pytest.approx(np.log1p(np.exp(4.0)))
  assert loss(1.0, 1.0, -9.0) == pytest.approx(np.log(2.0))  # No gap.
  assert float(steps.pair_loss(margin(1.0, 2.0), labels[:2],
                               np.array([-1, -1]))) == 0.0


def test_the_pair_weight_adds_the_pair_loss_to_the_step_loss(initial_state):
  batch = paired_batch()
  batch['label'][[0, 1, 4, 5]] = [1, 0, 0, 1]
  paired = jax.jit(functools.partial(steps.train_step, pair_weight=0.5))
  _, plain_metrics = train_step(initial_state, batch)
  _, metrics = paired(initial_state, batch)
  logits = step_logits(initial_state, batch)
  expected = float(steps.pair_loss(logits, batch['label'], batch['partner']))
  assert float(metrics['pair_loss']) == pytest.approx(expected, rel=1e-5)
  assert float(metrics['loss']) == pytest.approx(
      float(plain_metrics['loss']) + 0.5 * expected, rel=1e-5)
  assert 'pair_loss' not in plain_metrics


def test_the_counterfactual_weight_scales_paired_rows_in_the_loss(
    initial_state):
  batch = paired_batch()
  weighted = jax.jit(functools.partial(steps.train_step,
                                       counterfactual_weight=3.0))
  _, metrics = weighted(initial_state, batch)
  _, plain_metrics = train_step(initial_state, batch)
  logits = step_logits(initial_state, batch)
  losses = np.asarray(steps.cross_entropy(logits, batch['label']))
  weights = np.where(batch['partner'] >= 0, 3.0, 1.0)
  assert float(metrics['loss']) == pytest.approx(
      float((weights * losses).mean()), rel=1e-5)
  assert float(plain_metrics['loss']) == pytest.approx(float(losses.mean()),
                                                       rel=1e-5)
  unpaired = {**batch, 'partner': np.full(8, -1, np.int32)}
  _, same = weighted(initial_state, unpaired)
  assert float(same['loss']) == pytest.approx(float(losses.mean()), rel=1e-5)


def test_ema_params_follow_the_debiased_moving_average(initial_state):
  state = initial_state.replace(ema_params=initial_state.params,
                                ema_decay=0.9)
  step = jax.jit(steps.train_step)
  averaged = jax.device_get(state.params)
  for i in range(3):
    state, _ = step(state, random_batch(i))
    decay = min(0.9, (1 + i) / (10 + i))
    averaged = jax.tree_util.tree_map(
        lambda a, p, d=decay: d * a + (1 - d) * p, averaged,
        jax.device_get(state.params))
  assert_params_close(jax.device_get(state.ema_params), averaged)
  assert state.eval_params() is state.ema_params
  assert initial_state.eval_params() is initial_state.params
