"""Study 4, out-of-distribution detection: which scores flag text we never trained on.

In-distribution: IMDB test reviews. Out-of-distribution sets, near to far:
Rotten Tomatoes sentences, IMDB test reviews with their words shuffled,
docstrings of Python's standard library (English, not reviews), and strings
of random words from the run's vocabulary. Every score grows with
'more out-of-distribution':

* `msp`: minus the maximum softmax probability (Hendrycks & Gimpel 2017);
* `max_logit`: minus the largest logit;
* `energy`: minus logsumexp of the logits (Liu et al. 2020);
* `mahalanobis`: the smallest Mahalanobis distance of the pooled
  representation to a class mean, with class means and one shared covariance
  fitted on training reviews (Lee et al. 2018); the transformer only;
* `length`: how far log(word count) lies from the training reviews' mean, in
  standard deviations. It ignores the model: a score that cannot beat it adds
  nothing a length check would not.
"""

from __future__ import annotations

import importlib
import inspect
import random
import warnings
from typing import Any

import numpy as np
from scipy import special
from sklearn.covariance import EmpiricalCovariance

from analysis import context as context_lib, stats

# Standard-library modules whose docstrings form the far OOD set.
DOC_MODULES = ('argparse', 'ast', 'asyncio', 'bisect', 'calendar',
               'collections', 'csv', 'datetime', 'decimal', 'difflib',
               'email.message', 'fractions', 'functools', 'gettext', 'heapq',
               'http.client', 'inspect', 'itertools', 'json', 'logging',
               'os', 'pathlib', 'random', 're', 'shutil', 'sqlite3',
               'statistics', 'string', 'subprocess', 'tarfile', 'textwrap',
               'threading', 'typing', 'unittest', 'urllib.parse', 'zipfile')
MIN_DOC_WORDS = 12


def python_docstrings() -> list[str]:
  """Unique docstrings (one text each, white space collapsed), sorted."""
  found = set()
  with warnings.catch_warnings():  # typing.io and friends warn when read.
    warnings.simplefilter('ignore', DeprecationWarning)
    for name in DOC_MODULES:
      _collect(importlib.import_module(name), found)
  return sorted(found)


def _collect(module, found: set[str]) -> None:
  for obj in [module] + [v for _, v in inspect.getmembers(module)]:
    doc = inspect.getdoc(obj) if callable(obj) or obj is module else None
    if doc:
      text = ' '.join(doc.split())
      if len(text.split()) >= MIN_DOC_WORDS:
        found.add(text)


def ood_sets(ctx: context_lib.Context) -> dict[str, list[str]]:
  """The OOD texts, each set sampled to at most `ood_examples`."""
  rng = random.Random(ctx.options.seed)
  size = ctx.options.ood_examples
  sample = lambda texts: rng.sample(texts, min(size, len(texts)))
  reviews = sample(ctx.splits['test'].texts)
  shuffled = []
  for text in reviews:
    words = text.split()
    rng.shuffle(words)
    shuffled.append(' '.join(words))
  vocabulary = sorted(w for w in ctx.predictor.tokenizer.get_vocab()
                      if w.isalpha())
  random_words = [' '.join(rng.choices(vocabulary, k=len(text.split())))
                  for text in reviews]
  sets = {}
  if ctx.has_rt:
    sets['rotten_tomatoes'] = sample(ctx.splits[context_lib.RT].texts)
  sets.update(shuffled_reviews=shuffled, python_docs=sample(python_docstrings()),
              random_words=random_words)
  return sets


class Mahalanobis:
  """Class means and a shared covariance of pooled training representations."""

  def __init__(self, pooled: np.ndarray, labels: np.ndarray):
    self.means = np.stack([pooled[labels == c].mean(0) for c in (0, 1)])
    centred = pooled - self.means[labels]
    self.covariance = EmpiricalCovariance(assume_centered=True).fit(centred)

  def score(self, pooled: np.ndarray) -> np.ndarray:
    """`[n]` squared distance to the nearer class mean."""
    return np.min([self.covariance.mahalanobis(pooled - m)
                   for m in self.means], axis=0)


def _log_words(texts: list[str]) -> np.ndarray:
  return np.log([max(len(t.split()), 1) for t in texts])


def scores(logits: np.ndarray) -> dict[str, np.ndarray]:
  return {'msp': -special.softmax(logits, axis=1).max(1),
          'max_logit': -logits.max(1),
          'energy': -special.logsumexp(logits, axis=1)}


def run(ctx: context_lib.Context, scorer: context_lib.Scorer, progress
        ) -> dict[str, Any]:
  options = ctx.options
  sets = ood_sets(ctx)
  train = ctx.predictor.train_split(ctx.splits)
  train_log_words = _log_words(train.texts)
  mean, std = train_log_words.mean(), train_log_words.std()

  def length(texts):
    return np.abs(_log_words(texts) - mean) / std

  mahalanobis = None
  if scorer.name == 'transformer':
    rng = np.random.default_rng(options.seed)
    index = rng.permutation(len(train.texts))[:options.feature_examples]
    predictor = ctx.predictor
    pooled = predictor.pooled(
        predictor.encode([train.texts[i] for i in index]),
        progress='pooled train reviews')
    mahalanobis = Mahalanobis(pooled, train.labels[index])
  progress.update()

  def all_scores(texts, name, logits=None):
    logits = scorer.logits(texts, name) if logits is None else logits
    out = {**scores(logits), 'length': length(texts)}
    if mahalanobis is not None:
      out['mahalanobis'] = mahalanobis.score(ctx.predictor.pooled(
          ctx.predictor.encode(texts), progress=f'pooled {name}'))
    return out

  inside = all_scores(ctx.splits['test'].texts, 'test',
                      scorer.split_logits('test'))
  progress.update()
  out: dict[str, Any] = {'in_distribution': 'test',
                         'num_in_distribution': len(ctx.splits['test'].texts)}
  for set_name, texts in sets.items():
    outside = all_scores(texts, set_name)
    out[set_name] = {'num_examples': len(texts)}
    for score_name, values in outside.items():
      result = stats.detection(inside[score_name], values)
      intervals = stats.bootstrap(stats.detection,
                                  [(inside[score_name],), (values,)],
                                  options.bootstrap_samples // 5, options.seed)
      result.update({f'{k}_ci95': v for k, v in intervals.items()})
      out[set_name][score_name] = result
    if mahalanobis is None:
      out[set_name]['mahalanobis'] = {
          'auroc': None, 'fpr95': None, 'aupr': None,
          'skipped': 'needs a pooled representation; TF-IDF has none'}
    progress.update()
  return out


def steps(ctx: context_lib.Context) -> int:
  return 2 + (4 if ctx.has_rt else 3)
