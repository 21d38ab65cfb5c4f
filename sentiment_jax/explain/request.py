"""What `--attention_dump` asked for, checked against the model before any work."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from sentiment_jax import models, workdir as workdir_lib
from sentiment_jax.errors import InputError


@dataclasses.dataclass(frozen=True)
class DumpRequest:
  """The `--attention_*` flags, before they are checked against a model."""

  directory: Path
  layers: Sequence[str] | None = None  # --attention_layers values; None = all.
  heads: Sequence[str] | None = None  # --attention_heads values; None = all.
  num_examples: int = 20  # --attention_examples, for --mode=eval.

  def check(self, config: models.TransformerConfig
            ) -> tuple[list[int], list[int]]:
    """Returns the selected (layers, heads); checks the directory is writable.

    Raises InputError naming the flag, so a bad request fails before any work.
    """
    layers = _parse_indices(self.layers, config.num_layers, 'attention_layers',
                            'layer')
    heads = _parse_indices(self.heads, config.num_heads, 'attention_heads',
                           'head')
    if self.num_examples <= 0:
      raise InputError(f'--attention_examples={self.num_examples} must be '
                       'positive')
    try:
      workdir_lib.make_writable_dir(self.directory)
    except OSError as e:
      raise InputError(f'--attention_dump={self.directory}: cannot write there '
                       f'({e.strerror or e}); pass a writable directory'
                       ) from None
    return layers, heads


def _parse_indices(values: Sequence[str] | None, count: int, flag: str,
                   noun: str) -> list[int]:
  if not values:
    return list(range(count))
  try:
    indices = [int(v) for v in values]
  except ValueError:
    raise InputError(f'--{flag}={",".join(values)}: expected comma-separated '
                     f'{noun} numbers, e.g. --{flag}=0,1') from None
  for index in indices:
    if not 0 <= index < count:
      raise InputError(f'--{flag}: {noun} {index} does not exist; the model '
                       f'has {count} {noun}s, numbered 0-{count - 1}')
  return list(dict.fromkeys(indices))
