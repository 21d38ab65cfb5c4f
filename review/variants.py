"""The benchmark's contestants: one train step, eval batch and predict call each.

`build(name, config, batch, seq)` returns a `Variant` whose three callables
each run one complete, synchronised unit of work on fixed random data:
  naive            review/naive.py as written: a fresh jit every step.
  naive_jit        the naive model inside our jitted, donated step (what
                   remains is the head loop and unfused Q/K/V, finding 12).
  ours             sentiment_jax's step, `steps.jit_train_step`; also its
                   matmuls, each run alone (`review/matmuls.py`).
  ours_2dev        the same step data-parallel over 2 host CPU devices.
  ours_ynnpack     ours with XLA:CPU's default YNNPACK dot kernels, which
                   `sentiment_jax` turns off on import.
  ours_small_pages ours with glibc's malloc left on 4 KiB pages: the
                   huge pages that `sentiment_jax.hugepages` asks for, off.
  torch_eager      review/torch_twin.py, eager; also ours' step's matmuls,
                   each run alone, in PyTorch and in XLA.
  torch_compile    the same under `torch.compile`.
`review/benchmark.py` runs each in its own process, so imports, threads and
peak memory are per variant.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import jax
import numpy as np

from review import matmuls, naive
from sentiment_jax import models, sharding, steps

NAMES = ('naive', 'naive_jit', 'ours', 'ours_ynnpack', 'ours_small_pages',
         'ours_2dev', 'torch_eager', 'torch_compile')
# Environment a variant's process starts with: ours_2dev splits each batch
# over two host devices, one per core, instead of threading each op;
# ours_ynnpack restores XLA's default dot kernels; ours_small_pages refuses
# the huge pages every other variant inherits.
ENVIRONMENT = {
    'ours_2dev': {'XLA_FLAGS': '--xla_force_host_platform_device_count=2'},
    'ours_ynnpack': {
        'XLA_FLAGS': '--xla_cpu_experimental_ynn_fusion_type=individual_dot'},
    'ours_small_pages': {'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=0'},
}
# The names `Variant.floors` are timed under.
MATMULS, MATMULS_XLA = 'matmuls', 'matmuls_xla'
PREDICT_TOKENS = 208  # About the median review of the training split.


@dataclasses.dataclass
class Variant:
  train: Callable[[], None]
  eval: Callable[[], None]
  predict: Callable[[], None]
  threads: int
  # Ours' train-step matmuls, each run alone (`review/matmuls.py`), by the
  # name the benchmark times them under: ours in XLA (MATMULS);
  # torch_eager in PyTorch (MATMULS) and XLA (MATMULS_XLA).
  floors: dict[str, matmuls.MatmulFloor | matmuls.TorchMatmulFloor] = (
      dataclasses.field(default_factory=dict))


def predict_tokens(config: models.TransformerConfig) -> int:
  return min(PREDICT_TOKENS, config.max_len)


def random_data(config: models.TransformerConfig, batch: int, seq: int,
                eval_batch: int) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(0)
  return {'tokens': rng.integers(3, config.vocab_size, (batch, seq), np.int32),
          'label': rng.integers(0, 2, batch, np.int32),
          'eval': rng.integers(3, config.vocab_size, (eval_batch, seq),
                               np.int32),
          'one': rng.integers(3, config.vocab_size,
                              (1, predict_tokens(config)), np.int32)}


def step_matmuls(run_config, config: models.TransformerConfig,
                 data: dict) -> list[matmuls.Matmul]:
  """The matmuls of ours' train step on `data`'s batch, for a variant that
  holds no train state of ours (PyTorch's)."""
  state = steps.create_train_state(jax.random.PRNGKey(0), run_config,
                                   models.Classifier(config), 1000)
  return matmuls.step_matmuls(
      steps.train_step, state,
      {'tokens': data['tokens'], 'label': data['label']})


def _jax_variant(name: str, run_config, config: models.TransformerConfig,
                 data: dict) -> Variant:
  eval_model = models.Classifier(config.replace(deterministic=True))
  parallel = sharding.DataParallel(eval_model)
  state = steps.create_train_state(jax.random.PRNGKey(0), run_config,
                                   models.Classifier(config), 1000)
  batch = parallel.shard({k: data[k] for k in ('tokens', 'label')})
  one = jax.numpy.asarray(data['one'])
  if name == 'naive':
    model = naive.NaiveClassifier(config)
    params = naive.params_from_ours(state.params)

    def train():
      naive.train(model, params, [batch])

    def evaluate():  # As naive.evaluate runs it: not jitted.
      jax.block_until_ready(model.apply({'params': params}, data['eval'],
                                        rngs={'dropout': jax.random.key(0)}))

    def predict():
      jax.block_until_ready(model.apply({'params': params}, one,
                                        rngs={'dropout': jax.random.key(0)}))
    return Variant(train, evaluate, predict, os.cpu_count())
  if name == 'naive_jit':
    model = naive.NaiveClassifier(config)
    state = steps.TrainState.create(
        apply_fn=model.apply, params=naive.params_from_ours(state.params),
        tx=state.tx, rng=state.rng)
    eval_step = jax.jit(lambda p, t: model.apply(
        {'params': p}, t, rngs={'dropout': jax.random.key(0)}))
  else:
    eval_step = parallel.eval_step
  # One review cannot be split over devices: predict runs unsharded (the
  # naive eval step already is).
  predict_step = eval_step if name == 'naive_jit' else jax.jit(
      lambda p, t: eval_model.apply({'params': p}, t))
  # Ours' state and batch are at hand: trace the step on them.
  floors = ({MATMULS: matmuls.MatmulFloor(matmuls.step_matmuls(
      steps.train_step, state, batch))} if name == 'ours' else {})
  state = parallel.replicate(state)
  step = steps.jit_train_step(parallel)
  holder = [state]

  def train():
    holder[0], metrics = step(holder[0], batch)  # Donated: feed the output.
    jax.block_until_ready(metrics['loss'])

  eval_tokens = parallel.shard({'tokens': data['eval']}, ('tokens',))['tokens']
  return Variant(
      train,
      lambda: jax.block_until_ready(eval_step(holder[0].params, eval_tokens)),
      lambda: jax.block_until_ready(predict_step(holder[0].params, one)),
      os.cpu_count(), floors)


def _torch_variant(name: str, config: models.TransformerConfig, data: dict,
                   params, floors: dict[str, matmuls.MatmulFloor
                                    | matmuls.TorchMatmulFloor]
                   ) -> Variant:
  import torch  # Here, so the JAX variants' processes never load it.

  from review import torch_twin
  torch.set_num_threads(os.cpu_count())
  twin = torch_twin.load_flax_params(torch_twin.TorchClassifier(config),
                                     params)
  optimizer = torch_twin.make_optimizer(twin)
  train_step = torch_twin.train_step
  forward = twin
  if name == 'torch_compile':
    train_step = torch.compile(train_step)
    forward = torch.compile(twin)
  tokens, labels, eval_tokens, one = (
      torch.from_numpy(data[k]).long()
      for k in ('tokens', 'label', 'eval', 'one'))

  def train():
    twin.train()
    train_step(twin, optimizer, tokens, labels).item()

  def infer(x):
    twin.eval()
    with torch.no_grad():
      forward(x).sum().item()

  return Variant(train, lambda: infer(eval_tokens), lambda: infer(one),
                 torch.get_num_threads(), floors)


def build(name: str, run_config, batch: int, seq: int,
          eval_batch: int) -> Variant:
  """The variant `name` at `[batch, seq]` for `run_config`'s model."""
  if name not in NAMES:
    raise ValueError(f'unknown variant {name!r}; choose from {NAMES}')
  config = models.TransformerConfig.from_run_config(
      run_config, run_config.data.vocab_size,
      models.TransformerConfig.NO_NEGATION_IDS)  # The twin has no scope.
  data = random_data(config, batch, seq, eval_batch)
  if name.startswith('torch'):
    params = models.Classifier(config).init(
        jax.random.PRNGKey(0), data['tokens'][:1])['params']
    floors = {}
    if name == 'torch_eager':
      found = step_matmuls(run_config, config, data)
      floors = {MATMULS: matmuls.TorchMatmulFloor(found),
                MATMULS_XLA: matmuls.MatmulFloor(found)}
    return _torch_variant(name, config, data, params, floors)
  return _jax_variant(name, run_config, config, data)
