"""The scaling sweep: model size N (width, depth) x data size D (fraction).

  python -m scaling.sweep --config=configs/scaling.py       # the real sweep
  python -m scaling.sweep --config=configs/scaling.py:tiny  # seconds, for tests

`get_config(variant)` is the config every point trains with;
`get_sweep(variant)` lists the points as `--config.*` overrides, as
big_vision's `get_hyper` does. Each point is one epoch, so its D training
tokens are all distinct: a larger D is more reviews, never the same reviews
again.
"""

import itertools

import ml_collections

from configs import base, tiny

VARIANTS = ('full', 'tiny')


def _check(variant: str) -> None:
  if variant not in VARIANTS:
    raise ValueError(f'unknown variant {variant!r} of configs/scaling.py; '
                     f'choose one of {VARIANTS}')


def get_config(variant: str = 'full') -> ml_collections.ConfigDict:
  _check(variant)
  config = tiny.get_config() if variant == 'tiny' else base.get_config()
  # Tokens per review, [CLS] included; the tiny variant keeps its 64.
  config.data.max_len = 64 if variant == 'tiny' else 256
  config.data.train_fraction = 1.0  # Swept; a fixed nested subset of train.
  # One epoch sees no review twice, so dropout has nothing to guard against
  # and would only slow learning, more so for the smallest D.
  config.model.dropout_rate = 0.0
  config.train.num_epochs = 1  # D counts unique tokens.
  config.train.eval_every_steps = 0  # Validate once, at the end of the epoch.
  config.train.patience = 0  # Never stop early: every point trains all of D.
  config.eval.num_errors = 5  # Few error examples per point.
  config.eval.baseline = False  # No TF-IDF fit per point.
  return config


def get_sweep(variant: str = 'full') -> list[dict[str, object]]:
  """The points of the sweep: one dict of `--config.*` overrides each.

  Models scale width with a 4x MLP, and depth at one width. The full grid
  (N from 1e4 to 2e5 non-embedding parameters, D from 1/8 of the train split
  to all of it, ~0.5M to ~4M tokens) takes about 30 minutes on 2 CPU cores
  shared with another run.
  """
  _check(variant)
  if variant == 'tiny':
    models = [(1, 16), (1, 32)]
    fractions = [1.0]
  else:
    models = [(1, 32), (1, 64), (2, 64), (1, 128)]
    fractions = [0.125, 0.25, 0.5, 1.0]
  return [{'model.num_layers': num_layers, 'model.embed_dim': embed_dim,
           'model.mlp_dim': 4 * embed_dim, 'data.train_fraction': fraction}
          for (num_layers, embed_dim), fraction in itertools.product(
              models, fractions)]
