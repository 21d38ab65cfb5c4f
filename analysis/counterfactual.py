"""Study 7, counterfactual pairs: does the model read what a review says?

Each pair of Kaushik et al. (2020) is an IMDB review and its minimal edit
with the other label (`sentiment_jax/data/cad/`). A model that reads lexical
cues gets the originals right and the revisions near chance; one that reads
what changed gets both halves. Accuracy on originals, revisions and whole
pairs, with Wilson intervals, on the dev and test pairs; how many originals
the run trained on (none once the hygiene is in place); and a few pairs the
model got half wrong, as word diffs.
"""

from __future__ import annotations

import difflib
from typing import Any

import numpy as np

from analysis import context as context_lib, stats
from sentiment_jax import data_sources, metrics

SPLITS = {'cad_dev': 'dev', 'cad_test': 'test'}  # Name -> pair file.
NUM_EXAMPLES = 3  # Failed pairs shown per split.
CONTEXT_WORDS = 4  # Unchanged words kept around each edit in a diff.


def word_diff(original: str, revision: str) -> str:
  """The edits from `original` to `revision` as `[-old-]{+new+}`, each with
  a few words of context, joined by ' … '."""
  a, b = original.split(), revision.split()
  parts = []
  for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(
      a=a, b=b, autojunk=False).get_opcodes():
    if tag == 'equal':
      continue
    before = ' '.join(a[max(0, i1 - CONTEXT_WORDS):i1])
    after = ' '.join(a[i2:i2 + CONTEXT_WORDS])
    old = f'[-{" ".join(a[i1:i2])}-]' if i2 > i1 else ''
    new = f'{{+{" ".join(b[j1:j2])}+}}' if j2 > j1 else ''
    parts.append(' '.join(p for p in (before, old + new, after) if p))
  return ' … '.join(parts)


def run(ctx: context_lib.Context, scorer: context_lib.Scorer, progress
        ) -> dict[str, Any]:
  trained_on = set(ctx.predictor.train_split(ctx.splits).texts)
  out: dict[str, Any] = {}
  for name, file in SPLITS.items():
    pairs = data_sources.load_pairs(file)
    halves = (pairs.originals, pairs.revisions)
    logits = [scorer.logits(half.texts, f'{scorer.name}: score {name}')
              for half in halves]
    correct = [metrics.decide(x) == half.labels
               for x, half in zip(logits, halves)]
    block = metrics.pair_accuracy(*correct)
    n = block['num_pairs']
    for key, right in (('original', correct[0]), ('revised', correct[1]),
                       ('pair', correct[0] & correct[1])):
      block[f'{key}_accuracy_ci95'] = stats.wilson(int(right.sum()), n)
    block['num_originals_trained_on'] = sum(
        text in trained_on for text in pairs.originals.texts)
    half_wrong = np.flatnonzero(correct[0] & ~correct[1])[:NUM_EXAMPLES]
    p_original, p_revised = (metrics.p_positive(x) for x in logits)
    block['examples'] = [
        {'label_original': metrics.LABEL_NAMES[pairs.originals.labels[i]],
         'p_positive_original': float(p_original[i]),
         'p_positive_revised': float(p_revised[i]),
         'diff': word_diff(pairs.originals.texts[i], pairs.revisions.texts[i])}
        for i in half_wrong]
    out[name] = block
    progress.update()
  return out


def steps(ctx: context_lib.Context) -> int:
  del ctx
  return len(SPLITS)
