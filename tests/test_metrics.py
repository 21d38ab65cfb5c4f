"""The one metrics module: the decision rule, log loss, and agreement with training."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn import metrics as skm

from sentiment_jax import metrics, steps


def test_a_tie_is_positive_everywhere():
  # argmax would call [0, 0] negative; the rule says P(positive) >= 0.5.
  logits = np.zeros((1, 2), np.float32)
  assert metrics.decide(logits)[0] == 1
  assert metrics.p_positive(logits)[0] == 0.5
  assert int(metrics.decide(jnp.asarray(logits))[0]) == 1  # JAX arrays too.
  assert metrics.classification_metrics(
      logits=logits, labels=np.asarray([1]))['accuracy'] == 1.0


def test_the_label_follows_the_margin_not_a_rounded_probability():
  # P(positive) of a margin of -1e-17 rounds to exactly 0.5 in float64;
  # the margin says negative, and so does the rule.
  logits = np.asarray([[1e-17, 0.0]])
  assert metrics.p_positive(logits)[0] == 0.5
  assert metrics.decide(logits)[0] == 0


def test_log_loss_is_the_training_cross_entropy():
  rng = np.random.default_rng(0)
  logits = rng.normal(0, 3, (50, 2)).astype(np.float32)
  labels = rng.integers(0, 2, 50)
  training = float(steps.cross_entropy(jnp.asarray(logits),
                                       jnp.asarray(labels)).mean())
  assert metrics.log_loss(logits, labels) == pytest.approx(training, rel=1e-5)
  # And sklearn's, where probabilities are far from 0 and 1.
  assert metrics.log_loss(logits, labels) == pytest.approx(
      skm.log_loss(labels, metrics.p_positive(logits)), rel=1e-6)


def test_log_loss_stays_exact_where_probabilities_saturate():
  # A confident mistake by a margin of 60: P = 1 - 1e-26, which a clipped
  # probability would cap at -log(1e-7) = 16.1; the true loss is 60.
  logits = np.asarray([[60.0, 0.0]])
  assert metrics.log_loss(logits, np.asarray([1])) == pytest.approx(60.0)


def test_train_step_accuracy_uses_the_same_rule():
  # A tie (margin 0, labelled positive), a clear negative, a wrong positive.
  logits = jnp.asarray([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
  labels = np.asarray([1, 0, 0])
  # `steps.train_step` itself, on a model whose logits are these whatever
  # the tokens (a zero weight keeps a gradient path).
  state = steps.TrainState.create(
      apply_fn=lambda variables, tokens, rngs: logits + variables['params'][
          'w'].sum(),
      params={'w': jnp.zeros((2,))}, tx=optax.sgd(0.0),
      rng=jax.random.key_data(jax.random.key(0, impl=steps.DROPOUT_RNG_IMPL)))
  batch = {'tokens': jnp.zeros((3, 4), jnp.int32), 'label': jnp.asarray(labels)}
  _, step_metrics = jax.jit(steps.train_step)(state, batch)
  # argmax would call the tie negative and read 1/3.
  assert float(step_metrics['accuracy']) == pytest.approx(2 / 3)
  assert metrics.classification_metrics(
      logits=np.asarray(logits), labels=labels)['accuracy'] == pytest.approx(
          2 / 3)
  assert jax.jit(metrics.decide)(logits).tolist() == [1, 0, 1]


def test_accuracy_by_length_buckets_untruncated_lengths():
  logits = np.asarray([[0, 1], [0, 1], [1, 0], [1, 0]], np.float32)
  labels = np.asarray([1, 0, 0, 0])
  rows = metrics.accuracy_by_length(logits, labels,
                                    np.asarray([10, 20, 300, 2000]))
  assert rows == [
      {'tokens': '0-128', 'num_examples': 2, 'accuracy': 0.5},
      {'tokens': '256-512', 'num_examples': 1, 'accuracy': 1.0},
      {'tokens': '1024-', 'num_examples': 1, 'accuracy': 1.0}]


def test_mcnemar_counts_only_discordant_pairs():
  # 10 examples only A gets right, 2 only B, and 30 both or neither.
  a = np.array([True] * 10 + [False] * 2 + [True] * 20 + [False] * 10)
  b = np.array([False] * 10 + [True] * 2 + [True] * 20 + [False] * 10)
  result = metrics.mcnemar(a, b)
  assert (result['a_only_correct'], result['b_only_correct']) == (10, 2)
  # Exact two-sided: 2 * P(X <= 2) for X ~ Binomial(12, 1/2).
  assert result['p_value'] == pytest.approx(2 * (1 + 12 + 66) / 4096)
  assert metrics.mcnemar(b, a)['p_value'] == pytest.approx(result['p_value'])
  assert metrics.mcnemar(a, a) == {'a_only_correct': 0, 'b_only_correct': 0,
                                   'p_value': 1.0}
