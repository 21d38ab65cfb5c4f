"""Each correctness, numerical and performance finding of `review/`, shown.

Every test asserts the defect on `review/naive.py` (so it fails if the naive
code is accidentally fixed) and the right behaviour on `sentiment_jax`.
"""

import logging
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from review import findings, naive
from sentiment_jax import input_pipeline, models, sharding, steps

CONFIG = models.TransformerConfig(vocab_size=64, max_len=32, num_layers=1,
                                  num_heads=2, embed_dim=32, mlp_dim=64)
EVAL = CONFIG.replace(deterministic=True)
OURS = models.Classifier(EVAL)
# Naive dropout cannot be switched off at eval (finding 5); rate 0 isolates
# the other findings.
NAIVE = naive.NaiveClassifier(CONFIG.replace(dropout_rate=0.0))
KEY = {'dropout': jax.random.PRNGKey(0)}


def tokens(lengths, seq=16, seed=0):
  """`[len(lengths), seq]` random ids, row i real for its first lengths[i]."""
  ids = np.random.default_rng(seed).integers(3, CONFIG.vocab_size,
                                             (len(lengths), seq))
  ids[np.arange(seq)[None, :] >= np.asarray(lengths)[:, None]] = models.PAD_ID
  return jnp.asarray(ids, jnp.int32)


@pytest.fixture(scope='module')
def params():
  return OURS.init(jax.random.PRNGKey(1), tokens([16]))['params']


def test_the_naive_model_loads_our_parameters(params):
  converted = naive.params_from_ours(params)
  fresh = NAIVE.init(jax.random.PRNGKey(0), tokens([16]))['params']
  assert (jax.tree_util.tree_structure(converted)
          == jax.tree_util.tree_structure(fresh))


def test_mean_pooling_counts_padding(params):
  short, padded = tokens([8], seq=8), tokens([8], seq=16)
  assert np.allclose(OURS.apply({'params': params}, short),
                     OURS.apply({'params': params}, padded), atol=1e-5)
  # The naive classifier's pooling alone: its encoder is intercepted to
  # return the 8 real states (of the unpadded text) followed by 8 padded rows
  # of ones, so findings 2 and 3 cannot move the logits.
  converted = naive.params_from_ours(params)
  real = naive.NaiveEncoder(NAIVE.config).apply(
      {'params': converted['encoder']}, short, rngs=KEY)
  states = jnp.concatenate([real, jnp.ones_like(real)], axis=1)

  def fixed_encoder(next_fun, args, kwargs, context):
    if isinstance(context.module, naive.NaiveEncoder):
      return states
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(fixed_encoder):
    logits = NAIVE.apply({'params': converted}, padded, rngs=KEY)
  head = converted['head']
  over_real = real.mean(1) @ head['kernel'] + head['bias']
  over_all = states.mean(1) @ head['kernel'] + head['bias']
  np.testing.assert_allclose(logits, over_all, atol=1e-5)
  assert not np.allclose(logits, over_real, atol=1e-3)


def attention_weights(model, params, ids):
  _, state = model.apply({'params': params}, ids, rngs=KEY,
                         mutable=['intermediates'])
  return np.asarray(state['intermediates']['encoder']['layer_0']['attention']
                    ['attention_weights'][0])  # [batch, heads, q, k]


def test_pad_keys_get_attention(params):
  ids = tokens([10])
  ours = attention_weights(OURS, params, ids)
  assert np.all(ours[0, :, :10, 10:] == 0)
  theirs = attention_weights(NAIVE, naive.params_from_ours(params), ids)
  # Real queries (rows 0-9) put weight on the padded keys 10-15.
  assert np.all(theirs[0, :, :10, 10:].sum(-1) > 0.01)


@pytest.mark.slow  # Over 10 s.
def test_all_pad_row_is_nan(params):
  ids = tokens([16, 0])

  def loss(model, p):
    return model.apply({'params': p}, ids, rngs=KEY).sum()

  naive_params = naive.params_from_ours(params)
  assert np.isnan(NAIVE.apply({'params': naive_params}, ids, rngs=KEY)[1]).all()
  assert any(np.isnan(g).any() for g in jax.tree_util.tree_leaves(
      jax.grad(lambda p: loss(NAIVE, p))(naive_params)))
  assert np.isfinite(OURS.apply({'params': params}, ids)).all()
  assert all(np.isfinite(g).all() for g in jax.tree_util.tree_leaves(
      jax.grad(lambda p: loss(OURS, p))(params)))


def test_scores_scaled_by_model_width(params):
  """On full-length input the naive model differs from ours by its scale
  alone: restore the sqrt(num_heads) and the outputs agree, so the head loop
  and split projections (finding 12) compute the same function."""
  ids = tokens([16, 16], seed=3)
  ours = OURS.apply({'params': params}, ids)
  converted = naive.params_from_ours(params)
  assert not np.allclose(NAIVE.apply({'params': converted}, ids, rngs=KEY),
                         ours, atol=1e-3)
  query = converted['encoder']['layer_0']['attention']['query']
  factor = CONFIG.num_heads**0.5
  query['kernel'], query['bias'] = (query['kernel'] * factor,
                                    query['bias'] * factor)
  assert np.allclose(NAIVE.apply({'params': converted}, ids, rngs=KEY), ours,
                     atol=1e-5)


def test_eval_is_random(params):
  # Both models built for evaluation (deterministic=True), with dropout 0.1:
  # the naive one still draws masks, so two keys give two answers.
  eval_config = CONFIG.replace(dropout_rate=0.1, deterministic=True)
  ids = tokens([16, 16])
  theirs = naive.NaiveClassifier(eval_config)
  first, second = (theirs.apply({'params': naive.params_from_ours(params)},
                                ids, rngs={'dropout': jax.random.PRNGKey(seed)})
                   for seed in (0, 1))
  assert not np.allclose(first, second, atol=1e-4)
  ours = models.Classifier(eval_config)
  first, second = (ours.apply({'params': params}, ids,
                              rngs={'dropout': jax.random.PRNGKey(seed)})
                   for seed in (0, 1))
  np.testing.assert_array_equal(first, second)


def frozen_config():
  """A run config whose learning rate is 0, so params never move."""
  config = ml_collections.ConfigDict()
  config.data = {'max_len': CONFIG.max_len}
  config.train = {'learning_rate': 0.0, 'warmup_fraction': 0.0,
                  'weight_decay': 0.0, 'grad_clip': 1.0}
  return config


@pytest.mark.slow  # Over 10 s.
def test_dropout_masks_repeat_across_steps(params):
  """With a zero learning rate the params stay put, so two steps on the same
  batch give the same loss exactly when they draw the same dropout masks."""
  batch = {'tokens': tokens([16, 16, 16, 16]), 'label': jnp.array([0, 1, 0, 1])}
  dropping = CONFIG.replace(dropout_rate=0.3)
  _, naive_losses = naive.train(
      naive.NaiveClassifier(dropping), naive.params_from_ours(params),
      [batch, batch], learning_rate=0.0)
  assert naive_losses[0] == naive_losses[1]
  state = steps.create_train_state(jax.random.PRNGKey(0), frozen_config(),
                                   models.Classifier(dropping), 10)
  step = jax.jit(steps.train_step)
  state, first = step(state, batch)
  state, second = step(state, batch)
  assert float(first['loss']) != float(second['loss'])


def test_positions_past_max_len(params):
  too_long = tokens([CONFIG.max_len + 4], seq=CONFIG.max_len + 4)
  logits = NAIVE.apply({'params': naive.params_from_ours(params)}, too_long,
                       rngs=KEY)
  assert np.isfinite(logits).all()  # Accepted without a word.
  with pytest.raises(ValueError, match='exceeds max_len'):
    OURS.apply({'params': params}, too_long)


def test_batch_shapes_are_bucketed():
  lengths = np.random.default_rng(0).integers(1, 257, 40)
  ids = [np.ones(n, np.int32) for n in lengths]
  batches = [ids[i:i + 4] for i in range(0, 40, 4)]
  naive_shapes = {naive.pad_to_longest(b).shape for b in batches}
  ours = {input_pipeline.pad_batch(b, pad_multiple=32, max_len=256).shape
          for b in batches}
  assert len(naive_shapes) == len(batches)  # A compile per batch.
  assert len(ours) <= 256 // 32
  assert all(shape[1] % 32 == 0 for shape in ours)


def test_eval_counts_every_example(params):
  ids = [np.arange(3, 3 + n, dtype=np.int32) for n in range(5, 15)]
  labels = np.zeros(10, np.int32)
  _, scored = naive.evaluate(NAIVE, naive.params_from_ours(params), ids,
                             labels, batch_size=4)
  assert scored == 8
  encoded = input_pipeline.Encoded(ids, np.array([len(i) for i in ids]))
  logits = sharding.DataParallel(OURS).logits(
      params, encoded, batch_size=4, pad_multiple=8, max_len=CONFIG.max_len)
  assert logits.shape == (10, 2)
  np.testing.assert_allclose(logits[-1], OURS.apply(
      {'params': params}, jnp.asarray(ids[-1])[None])[0], atol=1e-5)


def count_compiles(caplog, run) -> int:
  with jax.log_compiles(True), caplog.at_level(logging.WARNING,
                                               logger='jax'):
    caplog.clear()
    run()
  return sum('Compiling' in r.getMessage() and 'step' in r.getMessage()
             for r in caplog.records)


@pytest.mark.slow  # Over 10 s.
def test_step_compiles_once(params, caplog):
  batches = [{'tokens': tokens([16] * 4, seed=s),
              'label': jnp.array([0, 1, 0, 1])} for s in range(3)]
  compiles = count_compiles(caplog, lambda: naive.train(
      NAIVE, naive.params_from_ours(params), batches))
  assert compiles >= 3
  parallel = sharding.DataParallel(OURS)
  step = steps.jit_train_step(parallel)
  state = parallel.replicate(steps.create_train_state(
      jax.random.PRNGKey(0), frozen_config(), models.Classifier(CONFIG), 10))

  def run():
    nonlocal state
    for batch in batches:
      state, _ = step(state, parallel.shard({k: np.asarray(v)
                                             for k, v in batch.items()}))
  assert count_compiles(caplog, run) == 1


def test_state_is_donated(params):
  batch = {'tokens': np.asarray(tokens([16] * 2)), 'label': np.array([0, 1])}
  parallel = sharding.DataParallel(OURS)
  state = parallel.replicate(steps.create_train_state(
      jax.random.PRNGKey(0), frozen_config(), models.Classifier(CONFIG), 10))
  leaf = jax.tree_util.tree_leaves(state.params)[0]
  steps.jit_train_step(parallel)(state, parallel.shard(batch))
  assert leaf.is_deleted()
  naive_params = jax.tree_util.tree_map(jnp.asarray,
                                        naive.params_from_ours(params))
  leaf = jax.tree_util.tree_leaves(naive_params)[0]
  naive.train(NAIVE, naive_params, [batch])
  assert not leaf.is_deleted()


def two_axis_sums(model: nn.Module, params) -> int:
  """Sums over two axes at once in the compiled gradient of `model`: XLA:CPU
  lowers a sum over (batch, seq) of a 3-D array to a reduce-window with a
  window in both axes, which ran 25x slower than the same sum over one
  flattened token axis (finding 17)."""
  batch = tokens([32] * 64, seq=32)
  loss = lambda p: model.apply({'params': p}, batch, rngs=KEY).sum()
  hlo = jax.jit(jax.grad(loss)).lower(params).compile().as_text()
  return sum(int(a) > 1 and int(b) > 1 for a, b in
             re.findall(r'window=\{size=(\d+)x(\d+)x\d+ ', hlo))


def test_gradients_sum_over_one_token_axis(params):
  naive_sums = two_axis_sums(NAIVE, naive.params_from_ours(params))
  # Ours keeps one: the final LayerNorm's bias, whose gradient comes from
  # the pooling over a [batch, seq, embed] array.
  assert two_axis_sums(OURS, params) <= 1 < naive_sums


def test_every_finding_names_evidence_that_exists():
  from helpers import REPO
  for finding in findings.FINDINGS:
    assert finding.evidence, finding.number
    for evidence in finding.evidence:
      if evidence.startswith('benchmark:'):
        continue
      path, name = evidence.split('::')
      assert f'def {name}(' in (REPO / path).read_text(), evidence
