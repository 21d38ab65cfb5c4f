"""Study 3, distribution shift: IMDB reviews to Rotten Tomatoes sentences.

RT sentences are both shorter and from another site, so the accuracy drop
mixes two effects. To separate them, IMDB test reviews are cut to their first
or last sentence (keeping the review's label), and RT is reweighted to the
word-count distribution of those cuts:

* length effect = accuracy on full reviews - accuracy on the cuts;
* domain effect = accuracy on the cuts - RT accuracy at the same lengths.

A cut sentence may carry no sentiment of its own, so the cuts' labels are
noisier than RT's: the length effect is an upper bound.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from analysis import context as context_lib, stats
from sentiment_jax import metrics

_SENTENCE_END = re.compile(r'(?<=[.!?])\s+')
MIN_WORDS = 3  # Shorter cuts ("Wow.") are dropped.
WORD_BINS = (0, 8, 16, 24, 32, 48, np.inf)  # Words per text, for matching.


def cut(texts: list[str], which: int) -> tuple[list[str], np.ndarray]:
  """Sentence `which` (0 = first, -1 = last) of each text, and its index."""
  kept, index = [], []
  for i, text in enumerate(texts):
    sentence = _SENTENCE_END.split(text)[which]
    if len(sentence.split()) >= MIN_WORDS:
      kept.append(sentence)
      index.append(i)
  return kept, np.asarray(index, int)


def _accuracy(correct: np.ndarray, weights: np.ndarray | None = None
              ) -> dict[str, Any]:
  n = len(correct)
  value = float(np.average(correct, weights=weights))
  out = {'accuracy': value, 'num_examples': int(n)}
  if weights is None:  # Wilson assumes equally weighted examples.
    out['accuracy_ci95'] = stats.wilson(int(correct.sum()), n)
  return out


def length_weights(words: np.ndarray, reference: np.ndarray) -> np.ndarray:
  """Per-example weights giving `words` the bin shares of `reference`."""
  bins, ref_bins = (np.digitize(w, WORD_BINS[1:-1]) for w in (words, reference))
  weights = np.zeros(len(words))
  for b in np.unique(ref_bins):
    inside = bins == b
    if inside.any():
      weights[inside] = np.mean(ref_bins == b) / inside.sum()
  return weights


def run(ctx: context_lib.Context, scorer: context_lib.Scorer, progress
        ) -> dict[str, Any]:
  if not ctx.has_rt:
    progress.update(steps(ctx))
    return {'skipped': f'the run\'s data source has no {context_lib.RT} split'}
  test, rt = ctx.splits['test'], ctx.splits[context_lib.RT]
  out: dict[str, Any] = {}
  for split, data in (('test', test), (context_lib.RT, rt)):
    raw = scorer.split_logits(split)
    correct = metrics.decide(raw) == data.labels
    calibrated = scorer.calibration.apply(raw)
    out[split] = {
        **_accuracy(correct),
        'mean_words': float(np.mean([len(t.split()) for t in data.texts])),
        'ece_15_before': metrics.ece(metrics.confidence(raw), correct),
        'ece_15_after': metrics.ece(metrics.confidence(calibrated), correct)}
  progress.update()
  cut_words, cut_correct = [], []
  for name, which in (('imdb_first_sentence', 0), ('imdb_last_sentence', -1)):
    texts, index = cut(test.texts, which)
    correct = metrics.decide(scorer.logits(texts)) == test.labels[index]
    words = np.asarray([len(t.split()) for t in texts])
    out[name] = {**_accuracy(correct), 'mean_words': float(words.mean())}
    cut_words.append(words)
    cut_correct.append(correct)
    progress.update()
  rt_words = np.asarray([len(t.split()) for t in rt.texts])
  rt_correct = metrics.decide(scorer.split_logits(context_lib.RT)) == rt.labels
  weights = length_weights(rt_words, np.concatenate(cut_words))
  out['rotten_tomatoes_length_matched'] = _accuracy(rt_correct, weights)
  cuts = float(np.concatenate(cut_correct).mean())
  out['length_effect'] = out['test']['accuracy'] - cuts
  out['domain_effect'] = cuts - out['rotten_tomatoes_length_matched'][
      'accuracy']
  return out


def steps(ctx: context_lib.Context) -> int:
  return 3
