"""Our classifier equals its PyTorch twin, and each porting mismatch shows.

Weights are copied from Flax into `review/torch_twin.py`'s model; logits
must agree within 1e-5 in float32. Requires PyTorch (review/requirements.txt):
skipped without it, except under CI, which installs it.
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from helpers import NEEDS_TORCH, import_or_skip

torch = import_or_skip('torch', NEEDS_TORCH)
nn = torch.nn

# pylint: disable=g-import-not-at-top,wrong-import-position
from review import torch_twin
from sentiment_jax import models, steps


def setup(activation: str, seed: int = 0, pooling: str = 'mean'):
  config = models.TransformerConfig(
      vocab_size=100, max_len=24, num_layers=2, num_heads=2, embed_dim=32,
      mlp_dim=64, activation=activation, pooling=pooling, deterministic=True)
  ids = np.random.default_rng(seed).integers(3, 100, (4, 24)).astype(np.int32)
  ids[1, 15:] = models.PAD_ID
  ids[2, 4:] = models.PAD_ID
  model = models.Classifier(config)
  params = model.init(jax.random.PRNGKey(seed), ids)['params']
  # Perturb every parameter so biases and LayerNorm scales are not trivial.
  leaves, tree = jax.tree_util.tree_flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
  params = jax.tree_util.tree_unflatten(tree, [
      leaf + 0.2 * jax.random.normal(key, leaf.shape)
      for leaf, key in zip(leaves, keys)])
  ours = np.asarray(model.apply({'params': params}, ids))
  twin = torch_twin.load_flax_params(torch_twin.TorchClassifier(config),
                                     params).eval()
  return config, params, ids, ours, twin


def twin_logits(twin, ids, grad: bool = False) -> np.ndarray:
  with torch.set_grad_enabled(grad):
    return twin(torch.from_numpy(ids).long()).detach().numpy()


@pytest.mark.parametrize('activation', ['relu', 'gelu'])
@pytest.mark.parametrize('grad', [False, True], ids=['no_grad', 'grad'])
def test_twin_equals_ours(activation, grad):
  _, _, ids, ours, twin = setup(activation)
  np.testing.assert_allclose(twin_logits(twin, ids, grad), ours, atol=1e-5)


def test_twin_equals_ours_with_a_cls_head():
  """Ours computes the last block at [CLS] alone; the twin, everywhere."""
  _, _, ids, ours, twin = setup('gelu', pooling='cls')
  np.testing.assert_allclose(twin_logits(twin, ids), ours, atol=1e-5)


def test_port_mismatches_change_logits():
  """Each convention we had to match moves the logits when left at
  PyTorch's default (findings 13-15)."""
  config, params, ids, ours, twin = setup('gelu')
  for layer in twin.layers:  # Finding 13: PyTorch's default epsilon.
    layer.norm1.eps = layer.norm2.eps = 1e-5
  twin.final_norm.eps = 1e-5
  assert np.abs(twin_logits(twin, ids, grad=True) - ours).max() > 1e-5
  _, _, _, _, twin = setup('gelu')
  for layer in twin.layers:  # Finding 14: PyTorch's default (exact) GELU.
    layer.activation = nn.functional.gelu
  assert np.abs(twin_logits(twin, ids, grad=True) - ours).max() > 1e-4
  # Finding 15: our mask convention (True = real) passed as PyTorch's.
  _, _, _, _, twin = setup('relu')
  original = [layer.forward for layer in twin.layers]
  for layer, forward in zip(twin.layers, original):
    layer.forward = functools.partial(
        lambda x, forward, src_key_padding_mask: forward(
            x, src_key_padding_mask=~src_key_padding_mask), forward=forward)
  _, _, ids, ours, _ = setup('relu')
  error = np.nan_to_num(np.abs(twin_logits(twin, ids, grad=True) - ours),
                        nan=np.inf)
  assert np.all(error.max(-1) > 1e-3)  # Every row is wrong.


def test_fast_path_ignores_tanh_gelu():
  """Finding 16: `nn.GELU(approximate='tanh')` matches ours while gradients
  are on, and not under `no_grad`, where the fused path runs exact GELU."""
  _, _, ids, ours, twin = setup('gelu')
  for layer in twin.layers:
    layer.activation = nn.GELU(approximate='tanh')
    layer.activation_relu_or_gelu = 2  # What the constructor sets for it.
  np.testing.assert_allclose(twin_logits(twin, ids, grad=True), ours,
                             atol=1e-5)
  assert np.abs(twin_logits(twin, ids, grad=False) - ours).max() > 1e-5


def test_a_train_step_matches():
  """`steps.train_step` on the optimizer `steps.create_train_state` builds,
  and the twin's step with its AdamW, give the same logits after, so the
  benchmark times the same computation in both. Two steps on two batches
  (the labels flipped): the schedule's first rate is 0 (warm-up), its second
  the peak, and AdamW's moments then hold both gradients."""
  config, params, ids, _, twin = setup('relu')
  labels = np.array([0, 1, 1, 0])
  model = models.Classifier(config)
  run_config = ml_collections.ConfigDict({
      'data': {'max_len': config.max_len},
      'train': {'learning_rate': 1e-3, 'warmup_fraction': 0.0,
                'weight_decay': 0.1, 'grad_clip': 1.0}})
  state = steps.create_train_state(jax.random.PRNGKey(0), run_config, model,
                                   total_steps=10)
  state = state.replace(params=params, opt_state=state.tx.init(params))
  for step_labels in (labels, 1 - labels):
    state, _ = jax.jit(steps.train_step)(
        state, {'tokens': jnp.asarray(ids), 'label': jnp.asarray(step_labels)})
  twin.train()
  optimizer = torch_twin.make_optimizer(twin)
  for rate, step_labels in ((0.0, labels), (1e-3, 1 - labels)):
    for group in optimizer.param_groups:
      group['lr'] = rate
    torch_twin.train_step(twin, optimizer, torch.from_numpy(ids).long(),
                          torch.from_numpy(step_labels).long())
  twin.eval()
  after = model.apply({'params': state.params}, ids)
  assert not np.allclose(after, model.apply({'params': params}, ids),
                         atol=1e-3)  # The step moved the weights.
  np.testing.assert_allclose(twin_logits(twin, ids, grad=True), after,
                             atol=1e-4)
