"""The scaling sweep: model size N (width, depth) x data size D (fraction).

  python -m scaling.sweep --config=configs/scaling.py       # the real sweep
  python -m scaling.sweep --config=configs/scaling.py:tiny  # seconds, for tests

`get_config(variant)` is the config every point trains with;
`get_sweep(variant)` lists the points as `--config.*` overrides, as
big_vision's `get_hyper` does, and `get_tuning(variant)` says how each
model's learning rate is chosen. Each point is one epoch, so its D training
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
  # Two length buckets, not eight: each bucket compiles the step once more,
  # which costs the small points more than the padding does.
  if variant == 'full':
    config.data.pad_multiple = 128
  config.data.train_fraction = 1.0  # Swept; a fixed nested subset of train.
  # One epoch sees no review twice, so dropout has nothing to guard against
  # and would only slow learning, more so for the smallest D.
  config.model.dropout_rate = 0.0
  # The law's N counts the transformer; an n-gram table would be a second,
  # unswept size.
  config.model.ngram_buckets = 0
  config.train.num_epochs = 1  # D counts unique tokens.
  config.train.eval_every_steps = 0  # Validate once, at the end of the epoch.
  config.train.patience = 0  # Never stop early: every point trains all of D.
  config.eval.num_errors = 5  # Few error examples per point.
  config.eval.baseline = False  # No TF-IDF fit per point.
  # The fit reads validation loss only: no test scoring (~15 s a point).
  config.eval.after_training = False
  return config


# Batch per training fraction of the full grid: every point takes at least
# 77 optimizer steps of its one epoch (19,902 reviews: 1/32 is 622 of them).
_BATCH = {1 / 32: 8, 1 / 16: 16, 1 / 8: 32, 1 / 4: 64, 1 / 2: 64, 1.0: 64}


def get_sweep(variant: str = 'full') -> list[dict[str, object]]:
  """The points of the sweep: one dict of `--config.*` overrides each.

  Models scale width with a 4x MLP (non-embedding N from 3.3e3 to 4.0e5,
  2.1 decades), plus depth at one width; D runs from 1/32 of the train split
  to all of it (1.5 decades), a smaller batch keeping small D to >= 77 steps.
  30 points; the learning rate of each model comes from `get_tuning`. The
  committed run took 75.5 minutes on 2 CPU cores: 22.3 of tuning (three of
  its proxies at width 256, since dropped), 53.2 for the points. Width 256
  (base's model) is left out for time: it alone would add about 25 minutes,
  and the report predicts base from the law instead.
  """
  _check(variant)
  if variant == 'tiny':
    models = [(1, 16), (1, 32)]
    batches = {1.0: 16}
  else:
    models = [(1, 16), (1, 32), (1, 64), (1, 128), (2, 128)]
    batches = _BATCH
  return [{'model.num_layers': num_layers, 'model.embed_dim': embed_dim,
           'model.mlp_dim': 4 * embed_dim, 'data.train_fraction': fraction,
           'data.batch_size': batch}
          for (num_layers, embed_dim), (fraction, batch) in itertools.product(
              models, batches.items())]


def get_tuning(variant: str = 'full') -> dict[str, object]:
  """Each model's learning rate: the one of `learning_rates` whose run on
  the `proxy` overrides (1/8 of the data, as the full grid trains it) ends at
  the lowest validation loss. Validation only; test is never looked at."""
  _check(variant)
  if variant == 'tiny':
    return {'learning_rates': [1e-3, 3e-3],
            'proxy': {'data.train_fraction': 0.5, 'data.batch_size': 16}}
  return {'learning_rates': [1e-3, 3e-3, 1e-2],
          'proxy': {'data.train_fraction': 1 / 8, 'data.batch_size': 32}}
