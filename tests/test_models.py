"""The encoder: output shapes, padding invariance and the sown attention maps."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from sentiment_jax import models, pretrain_models

VOCAB, MAX_LEN, BATCH, SEQ = 50, 24, 3, 10


def make_config(**overrides) -> models.TransformerConfig:
  kwargs = dict(vocab_size=VOCAB, max_len=MAX_LEN, num_layers=2, num_heads=2,
                embed_dim=16, mlp_dim=32, deterministic=True)
  return models.TransformerConfig(**{**kwargs, **overrides})


def ragged_tokens() -> np.ndarray:
  """`[BATCH, SEQ]` ids in [1, VOCAB) with rows of different real lengths."""
  rng = np.random.default_rng(0)
  tokens = rng.integers(1, VOCAB, (BATCH, SEQ)).astype(np.int32)
  for row, length in zip(tokens, (SEQ, 6, 3)):
    row[length:] = models.PAD_ID
  return tokens


def init(config, tokens):
  model = models.Classifier(config)
  return model, model.init(jax.random.PRNGKey(0), tokens)


def sown_embeddings(model, variables, tokens, name='input_embeddings'
                    ) -> np.ndarray:
  """The first example's `[seq, embed]` embeddings the encoder sowed as `name`."""
  _, state = model.apply(variables, tokens, mutable=['intermediates'])
  return np.asarray(state['intermediates']['encoder'][name][0][0])


def attention_maps(model, variables, tokens) -> list[np.ndarray]:
  _, state = model.apply(variables, tokens, mutable=['intermediates'])
  encoder = state['intermediates']['encoder']
  return [np.asarray(encoder[f'layer_{i}']['attention']['attention_weights'][0])
          for i in range(model.config.num_layers)]


def test_init_with_output_shapes():
  tokens = ragged_tokens()
  config = make_config()
  logits, variables = models.Classifier(config).init_with_output(
      jax.random.PRNGKey(0), tokens)
  assert logits.shape == (BATCH, 2)
  assert logits.dtype == jnp.float32
  encoder = variables['params']['encoder']
  assert encoder['token_embed']['embedding'].shape == (VOCAB, 16)
  assert encoder['position_embed'].shape == (MAX_LEN, 16)
  assert {f'layer_{i}' for i in range(2)} <= set(encoder)


def test_longer_than_max_len_is_refused():
  model, variables = init(make_config(), ragged_tokens())
  with pytest.raises(ValueError, match='max_len'):
    model.apply(variables, np.ones((1, MAX_LEN + 1), np.int32))


@pytest.mark.parametrize('pooling, ngram_buckets, negation', [
    ('mean', 0, False), ('cls', 0, False), ('mean', 64, False),
    ('mean', 0, True)])
def test_extra_padding_does_not_change_logits(pooling, ngram_buckets,
                                              negation):
  tokens = ragged_tokens()
  scope = dict(negator_ids=(5, 7), clause_end_ids=(9,)) if negation else {}
  model, variables = init(make_config(pooling=pooling, ngram_max=3,
                                      ngram_buckets=ngram_buckets, **scope),
                          tokens)
  padded = np.pad(tokens, ((0, 0), (0, 8)), constant_values=models.PAD_ID)
  np.testing.assert_allclose(model.apply(variables, padded),
                             model.apply(variables, tokens),
                             rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # Over 10 s.
def test_a_cls_head_computes_its_last_block_for_one_position():
  """Pruned to the [CLS] position, the last block gives the same logits and
  gradients as the full encoder, and sows that position's attention alone."""
  tokens = ragged_tokens()
  config = make_config(pooling='cls', ngram_buckets=64)
  model, variables = init(config, tokens)

  def logits_and_grads(every_position):
    def total(params):
      logits = model.apply({'params': params}, tokens,
                           every_position=every_position)
      return (logits * np.array([1.0, -2.0])).sum(), logits
    return jax.grad(total, has_aux=True)(variables['params'])

  (pruned_grads, pruned), (full_grads, full) = (
      logits_and_grads(every) for every in (False, True))
  np.testing.assert_allclose(pruned, full, rtol=1e-5, atol=1e-6)
  for got, want in zip(jax.tree_util.tree_leaves(pruned_grads),
                       jax.tree_util.tree_leaves(full_grads)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
  last = attention_maps(model, variables, tokens)[-1]
  assert last.shape == (BATCH, config.num_heads, 1, SEQ)
  _, state = model.apply(variables, tokens, every_position=True,
                         mutable=['intermediates'])
  full_last = state['intermediates']['encoder']['layer_1']['attention'][
      'attention_weights'][0]
  np.testing.assert_allclose(last[:, :, 0], full_last[:, :, 0], rtol=1e-5,
                             atol=1e-7)
  # Training (dropout on) takes the same pruned path.
  train_model = models.Classifier(config.replace(deterministic=False,
                                                 dropout_rate=0.1))
  dropped = train_model.apply(variables, tokens,
                              rngs={'dropout': jax.random.PRNGKey(1)})
  assert dropped.shape == (BATCH, 2) and np.all(np.isfinite(dropped))


def test_attention_is_sown_for_every_layer_as_distributions():
  tokens = ragged_tokens()
  config = make_config(num_layers=3)
  model, variables = init(config, tokens)
  maps = attention_maps(model, variables, tokens)
  assert len(maps) == 3
  for weights in maps:
    assert weights.shape == (BATCH, config.num_heads, SEQ, SEQ)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)


def test_padded_keys_get_exactly_zero_attention():
  tokens = ragged_tokens()
  model, variables = init(make_config(num_layers=3), tokens)
  is_pad_key = (tokens == models.PAD_ID)[:, None, None, :]
  for weights in attention_maps(model, variables, tokens):
    assert np.all(weights[np.broadcast_to(is_pad_key, weights.shape)] == 0.0)
    # Real keys keep positive mass: the mask hides padding, nothing else.
    assert np.all(weights[np.broadcast_to(~is_pad_key, weights.shape)] > 0.0)


def test_bfloat16_compute_gives_finite_float32_logits():
  tokens = ragged_tokens()
  model, variables = init(make_config(dtype=jnp.bfloat16), tokens)
  # Parameters stay float32 whatever the compute dtype.
  assert all(p.dtype == jnp.float32
             for p in jax.tree_util.tree_leaves(variables['params']))
  logits = model.apply(variables, tokens)
  assert logits.dtype == jnp.float32
  assert np.all(np.isfinite(logits))
  reference = models.Classifier(make_config()).apply(variables, tokens)
  np.testing.assert_allclose(logits, reference, atol=0.1)


def test_dropout_is_active_in_training_and_off_in_eval():
  tokens = ragged_tokens()
  config = make_config(dropout_rate=0.5, deterministic=False)
  model, variables = init(config, tokens)
  apply = lambda seed: model.apply(
      variables, tokens, rngs={'dropout': jax.random.PRNGKey(seed)})
  assert not np.allclose(apply(1), apply(2))
  eval_model = models.Classifier(config.replace(deterministic=True))
  eval_apply = lambda seed: eval_model.apply(
      variables, tokens, rngs={'dropout': jax.random.PRNGKey(seed)})
  np.testing.assert_array_equal(eval_apply(1), eval_apply(2))
  # Off, not merely repeatable: eval equals the same weights without dropout.
  no_dropout = models.Classifier(config.replace(dropout_rate=0.0,
                                                deterministic=True))
  np.testing.assert_allclose(eval_apply(1), no_dropout.apply(variables, tokens),
                             rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('rate', [0.1, 0.5])
def test_byte_dropout_drops_its_rounded_rate_and_keeps_the_mean(rate):
  x = jnp.ones((64, 64, 64))
  dropout = models.Dropout(rate)
  out = np.asarray(dropout.apply({}, x, rngs={'dropout': jax.random.key(3)}))
  dropped = (out == 0).mean()
  expected = round(rate * 256) / 256
  # 262,144 units: the standard error of the fraction is under 0.001.
  assert abs(dropped - expected) < 0.004
  assert abs(out.mean() - 1) < 0.01
  np.testing.assert_allclose(out[out != 0], 1 / (1 - expected), rtol=1e-6)
  again = dropout.apply({}, x, rngs={'dropout': jax.random.key(4)})
  assert (np.asarray(again) != out).any()
  np.testing.assert_array_equal(
      dropout.apply({}, x, deterministic=True), x)


def test_a_dropout_rate_that_rounds_to_zero_is_refused():
  with pytest.raises(ValueError, match='rounds to 0'):
    models.Dropout(0.001).apply({}, jnp.ones(4),
                                rngs={'dropout': jax.random.key(0)})


def test_word_dropout_zeroes_whole_pieces_in_training_only():
  tokens = ragged_tokens()
  config = make_config(word_dropout_rate=0.5, deterministic=False)
  model, variables = init(config, tokens)
  params = {'params': variables['params']['encoder']}
  # Cancelling the token embedding with embed_delta is what a dropped piece
  # looks like: with every piece dropped, only positions remain.
  table = variables['params']['encoder']['token_embed']['embedding']
  dropped_all = models.Encoder(config.replace(word_dropout_rate=0.0,
                                              deterministic=True)).apply(
      params, tokens, -table[tokens])
  all_gone = models.Encoder(config.replace(word_dropout_rate=0.999999)).apply(
      params, tokens, rngs={'dropout': jax.random.PRNGKey(3)})
  np.testing.assert_allclose(all_gone, dropped_all, atol=1e-5)
  apply = lambda seed: model.apply(
      variables, tokens, rngs={'dropout': jax.random.PRNGKey(seed)})
  assert not np.allclose(apply(1), apply(2))
  # Eval ignores the rate: the same params score as a model without it.
  plain = models.Classifier(make_config())
  np.testing.assert_array_equal(
      models.Classifier(config.replace(deterministic=True)).apply(
          variables, tokens), plain.apply(variables, tokens))


def test_tied_decoder_reads_the_token_embeddings():
  tokens = ragged_tokens()
  positions = np.array([[1, 2], [1, 3], [1, 2]], np.int32)
  tied = pretrain_models.MaskedLM(make_config(), tied_decoder=True)
  variables = jax.jit(tied.init)(jax.random.PRNGKey(0), tokens, positions)
  assert 'decoder' not in variables['params']
  # A row of the table for a piece absent from the input gets a gradient
  # only through the tied decoder.
  absent = sorted(set(range(3, VOCAB)) - set(tokens.ravel().tolist()))[0]
  def grad_of_row(model, variables):
    def loss(params):
      logits = model.apply({'params': params}, tokens, positions)
      return logits[..., absent].sum()
    grads = jax.jit(jax.grad(loss))(variables['params'])
    return np.abs(grads['encoder']['token_embed']['embedding'][absent]).sum()
  assert grad_of_row(tied, variables) > 0
  untied = pretrain_models.MaskedLM(make_config())
  assert grad_of_row(untied, jax.jit(untied.init)(
      jax.random.PRNGKey(0), tokens, positions)) == 0


def test_replaced_token_detector_replaces_only_chosen_pieces():
  tokens = ragged_tokens()
  # Two chosen slots in each row, and an unused third slot (weight 0).
  positions = np.array([[1, 4, 0], [2, 5, 0], [1, 2, 0]], np.int32)
  targets = np.take_along_axis(tokens, positions, 1)
  weights = np.array([[1, 1, 0]] * BATCH, np.float32)
  masked = tokens.copy()
  np.put_along_axis(masked, positions[:, :2], VOCAB - 1, 1)  # [MASK]
  model = pretrain_models.ReplacedTokenDetector(
      make_config(), make_config(embed_dim=8, mlp_dim=16, num_heads=1),
      first_piece=3)
  args = (masked, positions, targets, weights)
  rngs = {'params': jax.random.PRNGKey(0), 'sample': jax.random.PRNGKey(1)}
  variables = jax.jit(model.init)(rngs, *args)
  apply = jax.jit(lambda params, seed: model.apply(
      {'params': params}, *args, rngs={'sample': jax.random.PRNGKey(seed)}))
  chosen = np.zeros(tokens.shape, bool)
  np.put_along_axis(chosen, positions[:, :2], True, 1)
  for seed in range(5):
    _, logits, replaced = apply(variables['params'], seed)
    assert logits.shape == tokens.shape
    assert not np.asarray(replaced)[~chosen].any()
  # The detector's loss does not train the generator (its samples are data).
  grads = jax.jit(jax.grad(lambda params: apply(params, 0)[1].sum()))(
      variables['params'])
  assert all(not np.asarray(g).any()
             for g in jax.tree_util.tree_leaves(grads['generator']))
  assert any(np.asarray(g).any()
             for g in jax.tree_util.tree_leaves(grads['encoder']))


def test_count_params_separates_embeddings():
  _, variables = init(make_config(), ragged_tokens())
  total, non_embedding = models.count_params(variables['params'])
  assert total == sum(x.size for x in jax.tree_util.tree_leaves(variables))
  assert total - non_embedding == VOCAB * 16 + MAX_LEN * 16


def test_ngram_ids_hash_the_pieces_ending_at_each_position():
  tokens = np.array([[2, 7, 9, 7, 9, 4, 0, 0]], np.int32)
  bigrams = np.asarray(models.ngram_ids(tokens, 2, 1 << 20))[0]
  trigrams = np.asarray(models.ngram_ids(tokens, 3, 1 << 20))[0]
  assert ((bigrams >= 0) & (bigrams < 1 << 20)).all()
  assert bigrams[2] == bigrams[4]  # (7, 9) twice: one row, wherever it occurs.
  assert bigrams[1] != bigrams[3]  # (2, 7) vs (9, 7): order and content count.
  assert trigrams[2] != trigrams[4]  # (2, 7, 9) vs (9, 7, 9).
  # 5 distinct bigrams and 6 trigrams among the 6 real positions, all apart.
  assert len(set(bigrams[:6].tolist()) | set(trigrams[:6].tolist())) == 11


def test_ngram_embeddings_change_logits_and_are_left_out_of_n():
  tokens = ragged_tokens()
  model, variables = init(make_config(ngram_buckets=64, ngram_dim=8), tokens)
  table = variables['params']['encoder']['ngram_embed']['table']['embedding']
  assert table.shape == (64, 8)
  _, plain = init(make_config(), tokens)
  total, non_embedding = models.count_params(variables['params'])
  plain_total, plain_non_embedding = models.count_params(plain['params'])
  assert total - non_embedding == plain_total - plain_non_embedding + 64 * 8
  assert non_embedding == plain_non_embedding + 8 * 16  # The projection.
  zeroed = jax.tree_util.tree_map(lambda x: x, variables)
  zeroed['params']['encoder']['ngram_embed']['table']['embedding'] = (
      jnp.zeros_like(table))
  assert not np.allclose(model.apply(variables, tokens),
                         model.apply(zeroed, tokens))


def test_negation_scope_runs_from_a_negator_to_the_clause_end():
  not_, t, stop, pad = 5, 7, 9, models.PAD_ID
  tokens = jnp.array([[1, not_, 2, 3, stop, 4, t, 2, not_, 3, pad],
                      [not_, stop, 2, 3, 1, 1, 1, 1, 1, 1, 1]])
  scope = models.negation_scope(tokens, (not_, t), (stop,))
  np.testing.assert_array_equal(scope, [[0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1],
                                        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]])


def test_a_negation_window_ends_the_scope_early():
  not_, stop = 5, 9
  tokens = jnp.array([[not_, 1, 2, 3, 4, stop, 1, not_, 2, stop, 3]])
  scope = models.negation_scope(tokens, (not_,), (stop,), window=2)
  np.testing.assert_array_equal(scope, [[0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0]])


def test_the_negation_vector_is_added_to_scoped_pieces_only():
  tokens = np.array([[1, 5, 2, 3, 9, 4]], np.int32)
  config = make_config(negator_ids=(5,), clause_end_ids=(9,))
  model, variables = init(config, tokens)
  vector = variables['params']['encoder']['negation_embed']
  assert vector.shape == (16,)
  added = (sown_embeddings(model, variables, tokens)
           - sown_embeddings(models.Classifier(make_config()), variables,
                             tokens))
  np.testing.assert_allclose(added, np.outer([0, 0, 1, 1, 0, 0], vector),
                             atol=1e-7)
  total, non_embedding = models.count_params(variables['params'])
  assert total - non_embedding == (VOCAB + MAX_LEN + 1) * 16


def test_the_negation_gain_reverses_scoped_pieces_only():
  tokens = np.array([[1, 5, 2, 3, 9, 4, 0, 0]], np.int32)
  config = make_config(negator_ids=(5,), clause_end_ids=(9,),
                       negation_embed=False, negation_flip=True)
  model, variables = init(config, tokens)
  assert 'negation_embed' not in variables['params']['encoder']
  gain = variables['params']['encoder']['negation_gain']
  np.testing.assert_array_equal(gain, -np.ones(16))  # Starts as a reversal.
  embeddings = lambda m: sown_embeddings(m, variables, tokens)
  flipped = embeddings(model)
  plain = embeddings(models.Classifier(make_config()))
  sign = np.array([1, 1, -1, -1, 1, 1, 1, 1])[:, None]
  np.testing.assert_allclose(flipped, sign * plain, atol=1e-7)


def test_silenced_negators_enter_as_zeros():
  tokens = np.array([[1, 5, 2, 3, 9, 4, 0, 0]], np.int32)
  flip = dict(negator_ids=(5,), clause_end_ids=(9,), negation_embed=False,
              negation_flip=True)
  model, variables = init(make_config(**flip), tokens)
  embeddings = lambda m: sown_embeddings(m, variables, tokens)
  flipped = embeddings(model)
  silenced = embeddings(models.Classifier(make_config(**flip,
                                                      silence_negators=True)))
  np.testing.assert_array_equal(silenced[1], np.zeros(16))
  np.testing.assert_array_equal(np.delete(silenced, 1, 0),
                                np.delete(flipped, 1, 0))
  assert np.abs(flipped[1]).sum() > 0


def test_contrast_scope_runs_from_the_sentence_start_through_but():
  but, stop = 7, 9
  tokens = jnp.array([[1, 2, 3, but, 4, stop, 5, but, 6, 0]])
  np.testing.assert_array_equal(
      models.contrast_scope(tokens, (but,), (stop,))[0],
      [1, 1, 1, 1, 0, 0, 1, 1, 0, 0])


def test_the_contrast_gain_starts_by_silencing_what_but_overrules():
  tokens = np.array([[1, 2, 7, 3, 0, 0]], np.int32)
  model, variables = init(make_config(contrast_ids=(7,),
                                      sentence_end_ids=(9,)), tokens)
  embeddings = sown_embeddings(model, variables, tokens)
  np.testing.assert_array_equal(embeddings[:3], 0)
  assert np.abs(embeddings[3]).sum() > 0


def test_skipped_ngrams_are_those_holding_a_negator_or_ending_in_its_scope():
  # Negator 5 at position 2 governs 3 and 4 (9 ends the clause): every
  # bigram or trigram ending at 2, 3 or 4 holds it or ends in the scope.
  tokens = np.array([[1, 2, 5, 3, 4, 9, 6, 7, 8, 0]], np.int32)
  scoped = dict(negator_ids=(5,), clause_end_ids=(9,), ngram_buckets=64,
                ngram_dim=8, ngram_max=3)
  model, variables = init(make_config(**scoped), tokens)
  embeddings = lambda m: sown_embeddings(m, variables, tokens,
                                         'word_embeddings')
  kept = embeddings(model)
  skipped = embeddings(models.Classifier(make_config(**scoped,
                                                     ngram_skip_negated=True)))
  words = variables['params']['encoder']['token_embed']['embedding'][tokens[0]]
  np.testing.assert_array_equal(skipped[2:5], words[2:5])
  np.testing.assert_array_equal(np.delete(skipped, [2, 3, 4], 0),
                                np.delete(kept, [2, 3, 4], 0))
  assert not np.allclose(kept[2:5], words[2:5])
  # Without a negator in the review nothing is skipped.
  plain = np.where(tokens == 5, 6, tokens)
  np.testing.assert_array_equal(
      model.apply(variables, plain),
      models.Classifier(make_config(**scoped, ngram_skip_negated=True)).apply(
          variables, plain))


@pytest.mark.parametrize('field', ['negation_scope', 'negation_flip',
                                   'contrast_scope'])
def test_a_negation_config_needs_the_tokenizer_ids(field):
  model = dict(
      num_layers=1, num_heads=1, embed_dim=8, mlp_dim=8, dropout_rate=0.0,
      attention_dropout_rate=0.0, word_dropout_rate=0.0, ngram_buckets=0,
      ngram_max=2, ngram_dim=8, pooling='mean', activation='relu',
      dtype='float32', negation_scope=False, negation_flip=False,
      negation_window=0, silence_negators=False, contrast_scope=False,
      ngram_skip_negated=False)
  model[field] = True
  config = ml_collections.ConfigDict(dict(data=dict(max_len=8), model=model))
  with pytest.raises(ValueError, match='negation_ids'):
    models.TransformerConfig.from_run_config(config, vocab_size=10)
  built = models.TransformerConfig.from_run_config(
      config, 10, ((5,), (9,), (7,), (8,)))
  negation = field != 'contrast_scope'
  assert (built.negator_ids, built.clause_end_ids) == (
      ((5,), (9,)) if negation else ((), ()))
  assert (built.contrast_ids, built.sentence_end_ids) == (
      ((), ()) if negation else ((7,), (8,)))
  assert (built.negation_embed, built.negation_flip) == (
      field == 'negation_scope', field == 'negation_flip')


@pytest.mark.parametrize('pooling', ['mean', 'cls'])
def test_forward_flops_agree_with_xla_count(pooling):
  """The one FLOP formula against XLA's own count of a compiled forward pass
  (which also counts LayerNorm, softmax and the activation: a few %)."""
  config = models.TransformerConfig(vocab_size=50, max_len=128, num_layers=2,
                                    num_heads=2, embed_dim=128, mlp_dim=512,
                                    pooling=pooling, deterministic=True)
  model = models.Classifier(config)
  tokens = jnp.ones((4, 128), jnp.int32)
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0), tokens)
  cost = jax.jit(model.apply).lower(params, tokens).compile().cost_analysis()
  xla = (cost[0] if isinstance(cost, list) else cost)['flops']
  ours = 4 * models.forward_flops(config, 128)
  assert ours == pytest.approx(xla, rel=0.1)


@pytest.mark.parametrize('batch, seq, layers, width, heads, pooling', [
    (64, 256, 1, 256, 2, 'mean'),  # The base shape.
    (64, 256, 1, 256, 2, 'cls'),  # The base shape, a [CLS] head.
    (32, 256, 4, 384, 4, 'mean'),  # The sweep's largest model.
])
def test_train_flops_agree_with_xla_count_of_the_train_step(
    batch, seq, layers, width, heads, pooling):
  """3x the forward formula (what the sweep's compute axis uses) against
  XLA's count of the whole compiled train step, optimizer included. Below
  width ~128 the non-matmul work the formula leaves out passes 5% (12% at
  width 16)."""
  from configs import base
  from sentiment_jax import sharding, steps
  config = base.get_config()
  config.model.update(num_layers=layers, embed_dim=width, mlp_dim=4 * width,
                      num_heads=heads, pooling=pooling)
  config.data.max_len = seq
  model_config = models.TransformerConfig.from_run_config(
      config, 16000, models.TransformerConfig.NO_NEGATION_IDS)
  parallel = sharding.DataParallel(models.Classifier(
      model_config.replace(deterministic=True)))
  state = jax.eval_shape(lambda: steps.create_train_state(
      jax.random.PRNGKey(0), config, models.Classifier(model_config), 100))
  batch_shapes = {'tokens': jax.ShapeDtypeStruct((batch, seq), jnp.int32),
                  'label': jax.ShapeDtypeStruct((batch,), jnp.int32)}
  cost = steps.jit_train_step(parallel).lower(
      state, batch_shapes).compile().cost_analysis()
  xla = (cost[0] if isinstance(cost, list) else cost)['flops']
  ours = models.TRAIN_FLOPS_PER_FORWARD * batch * models.forward_flops(
      model_config, seq)
  assert ours == pytest.approx(xla, rel=0.05)
