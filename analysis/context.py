"""What every study reads: the two scorers, the run's splits, and the options.

A `Scorer` wraps either the trained run (`inference.Predictor`) or the TF-IDF
baseline behind one `logits(texts)` call, with its temperature fitted on the
validation split when it is built. Split logits are cached, so studies that
read the same split score it once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from sentiment_jax import (baseline as baseline_lib,
                           calibration as calibration_lib, inference,
                           input_pipeline)

RT = 'rotten_tomatoes'  # The embedded source's out-of-domain split.


@dataclasses.dataclass
class Options:
  """Sizes and seeds of the studies (the CLI's flags)."""

  bootstrap_samples: int = 1000  # Resamples per interval.
  attack_examples: int = 200  # Correct test reviews each attack edits.
  ood_examples: int = 1000  # Examples per OOD set (at most).
  feature_examples: int = 5000  # Training reviews for the Mahalanobis fit.
  dir_examples: int = 200  # Real test reviews per INV and DIR test.
  seed: int = 0  # Seeds every sample and template expansion.


class Scorer:
  """One model under study: raw logits `[n, 2]` for texts, plus calibration."""

  def __init__(self, name: str,
               score: Callable[[Sequence[str], str | None], np.ndarray],
               splits: dict[str, input_pipeline.Split]):
    self.name = name  # 'transformer' or 'baseline'.
    self._score = score
    self._splits = splits
    self._cache: dict[str, np.ndarray] = {}
    validation = splits['validation']
    self.calibration = calibration_lib.fit(self.split_logits('validation'),
                                           validation.labels)

  def logits(self, texts: Sequence[str], progress: str | None = None
             ) -> np.ndarray:
    return np.asarray(self._score(list(texts), progress), np.float64)

  def split_logits(self, split: str) -> np.ndarray:
    if split not in self._cache:
      self._cache[split] = self.logits(self._splits[split].texts,
                                       f'{self.name}: score {split}')
    return self._cache[split]


@dataclasses.dataclass
class Context:
  predictor: inference.Predictor
  splits: dict[str, input_pipeline.Split]
  transformer: Scorer
  baseline: Scorer
  baseline_model: baseline_lib.TfidfBaseline
  options: Options

  @property
  def scorers(self) -> tuple[Scorer, Scorer]:
    return (self.transformer, self.baseline)

  @property
  def has_rt(self) -> bool:
    return RT in self.splits


def build(predictor: inference.Predictor, options: Options) -> Context:
  """Loads the splits, fits the baseline, and calibrates both on validation."""
  splits = predictor.splits()
  train = predictor.train_split(splits)

  def transformer_logits(texts, progress):
    return predictor.logits(predictor.encode(texts), progress=progress)

  baseline_model = baseline_lib.TfidfBaseline(train)
  return Context(
      predictor, splits, Scorer('transformer', transformer_logits, splits),
      Scorer('baseline', lambda texts, _: baseline_model.logits(texts),
             splits),
      baseline_model, options)
