"""The sweep's definition: the points and the tuning a config file gives,
checked against the config before anything trains."""

from __future__ import annotations

from collections.abc import Callable, Sequence
import dataclasses
import importlib.util
from typing import Any

import ml_collections


class SweepError(RuntimeError):
  """The sweep cannot run as asked; the message says what to change."""


@dataclasses.dataclass(frozen=True)
class Tuning:
  """How each model size's learning rate is chosen (`get_tuning()`).

  Every rate of a model's grid trains the model with the `proxy` overrides
  (a cheap stand-in: less data); the rate whose proxy ends at the lowest
  validation loss trains all of that model's points. `learning_rates` maps a
  model's overrides to its grid, so a grid can follow the width. A best rate
  at the grid's edge says only that the optimum may lie beyond it, so up to
  `max_extensions` times the grid grows by one rate past that edge.
  """

  learning_rates: Callable[[dict[str, Any]], Sequence[float]]
  proxy: dict[str, Any]
  max_extensions: int = 0

  def rates(self, model: dict[str, Any]) -> tuple[float, ...]:
    """The grid of `model`, checked."""
    rates = self.learning_rates(model)
    rates = tuple(rates) if isinstance(rates, (list, tuple)) else (rates,)
    if not rates or not all(isinstance(r, float) and r > 0 for r in rates):
      raise SweepError(f'get_tuning() gives {point_name(model)} the learning '
                       f'rates {rates!r}; give a list of positive floats')
    return rates


def beyond_edge(losses: dict[float, float]) -> float | None:
  """The next rate to try when the lowest proxy loss of `losses` (rate ->
  loss) sits at the lowest or highest rate: one step past that edge, at the
  ratio of the edge's two rates. None when the best is inside the grid."""
  rates = sorted(losses)
  if len(rates) < 2:
    return None
  best = min(rates, key=losses.get)
  if best == rates[0]:
    return float(f'{rates[0] ** 2 / rates[1]:.3g}')
  if best == rates[-1]:
    return float(f'{rates[-1] ** 2 / rates[-2]:.3g}')
  return None


def load_sweep(config_filename: str) -> tuple[list[dict[str, Any]],
                                              Tuning | None]:
  """get_sweep([variant]) of a `path.py[:variant]` config file, and its
  get_tuning([variant]) if it defines one."""
  path, _, variant = config_filename.partition(':')
  spec = importlib.util.spec_from_file_location('sweep_config', path)
  if spec is None:
    raise SweepError(f'{path} is not a Python file')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not callable(getattr(module, 'get_sweep', None)):
    raise SweepError(f'{path} defines no get_sweep(); add one that returns a '
                     'list of override dicts, e.g. [{"model.embed_dim": 64}]')
  call = lambda f: f(variant) if variant else f()
  points = list(call(module.get_sweep))
  if not points:
    raise SweepError(f'{path}: get_sweep() returned no points')
  tuning = None
  if callable(getattr(module, 'get_tuning', None)):
    spec = call(module.get_tuning)
    rates = spec.get('learning_rates', ())
    # One list for every model, or a function of the model's overrides.
    grid = rates if callable(rates) else lambda model: rates
    tuning = Tuning(grid, dict(spec.get('proxy', {})),
                    int(spec.get('max_extensions', 0)))
  return points, tuning


def point_name(overrides: dict[str, Any]) -> str:
  """`embed_dim=64,train_fraction=0.5`: the last part of each key, in order."""
  return ','.join(f'{key.rsplit(".", 1)[-1]}={value}'
                  for key, value in overrides.items())


def check_points(points: Sequence[Any], config: ml_collections.ConfigDict,
                 fixed: dict[str, Any]) -> None:
  """Raises SweepError unless every point overrides existing scalar fields.

  `fixed` are the command line's `--config.*` overrides, which a point must
  not also set (the point would silently win).
  """
  names = set()
  for number, point in enumerate(points, start=1):
    if not isinstance(point, dict) or not point:
      raise SweepError(f'sweep point {number} is {point!r}, not a non-empty '
                       'dict of overrides')
    for key, value in point.items():
      if key in fixed:
        raise SweepError(f'--config.{key} is swept (point {number}); drop it '
                         'from the command line')
      if not isinstance(value, (bool, int, float, str)):
        raise SweepError(f'sweep point {number}: {key}={value!r} is not a '
                         'number, string or bool')
      try:
        set_field(config.copy_and_resolve_references(), key, value)
      except (AttributeError, KeyError, TypeError) as e:
        raise SweepError(f'sweep point {number}: cannot set {key}={value!r} '
                         f'in the config ({e})') from None
    name = point_name(point)
    if name in names:
      raise SweepError(f'sweep point {number} repeats {name}')
    names.add(name)


def point_config(config: ml_collections.ConfigDict, point: dict
                 ) -> ml_collections.ConfigDict:
  """A copy of the sweep's config with the point's overrides set."""
  config = config.copy_and_resolve_references()
  for key, value in point.items():
    set_field(config, key, value)
  return config


def set_field(config: ml_collections.ConfigDict, dotted: str, value: Any) -> None:
  *parents, field = dotted.split('.')
  for parent in parents:
    config = getattr(config, parent)
  if field not in config:
    raise KeyError(f'no field {dotted!r}')
  setattr(config, field, value)



def model_of(point: dict[str, Any]) -> dict[str, Any]:
  """The overrides of a point that fix the model size."""
  return {k: v for k, v in point.items() if k.startswith('model.')}
