"""Runs a few data-parallel train steps on fixed batches and saves the params.

`test_train.py` runs this in subprocesses with 1 and 2 forced host devices
(XLA_FLAGS must be set before JAX starts, hence a separate process):
`python tests/parallel_steps.py OUT.npz`.
"""

import sys

import jax
import numpy as np

from configs import tiny
from sentiment_jax import models, sharding, steps

NUM_STEPS = 4
VOCAB = 100
NEGATION_IDS = ((5,), (9,), (7,), (8,))  # Stand-ins: random tokens have no words.


def main(out_path: str) -> None:
  config = tiny.get_config()
  # Dropout on, so the test also covers per-step RNG under sharding.
  config.model.dropout_rate = 0.1
  model = models.Classifier(
      models.TransformerConfig.from_run_config(config, VOCAB, NEGATION_IDS))
  parallel = sharding.DataParallel(
      models.Classifier(model.config.replace(deterministic=True)))
  state = steps.create_train_state(jax.random.PRNGKey(0), config, model,
                                   NUM_STEPS)
  state = parallel.replicate(state)
  train_step = steps.jit_train_step(parallel)
  rng = np.random.default_rng(0)
  batch_size, seq = config.data.batch_size, config.data.pad_multiple
  for _ in range(NUM_STEPS):
    lengths = rng.integers(2, seq + 1, batch_size)
    tokens = rng.integers(1, VOCAB, (batch_size, seq)).astype(np.int32)
    tokens[np.arange(seq)[None, :] >= lengths[:, None]] = models.PAD_ID
    batch = {'tokens': tokens,
             'label': rng.integers(0, 2, batch_size).astype(np.int32)}
    state, _ = train_step(state, parallel.shard(batch))
  leaves = jax.tree_util.tree_leaves_with_path(jax.device_get(state.params))
  np.savez(out_path, device_count=jax.device_count(),
           **{jax.tree_util.keystr(path): leaf for path, leaf in leaves})


if __name__ == '__main__':
  main(sys.argv[1])
