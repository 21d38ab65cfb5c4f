"""Counterfactually augmented IMDB pairs (Kaushik et al. 2020): reading and scoring them.

`load_pairs('dev')` reads the vendored `data/cad/dev_paired.tsv`: each
original review and its minimal revision with the other label, cleaned as
training cleans text. `pair_accuracy` scores a classifier on both halves: a
model that reads lexical cues does well on the originals and near chance on
the revisions; one that reads what a review says gets both halves right.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np

from sentiment_jax.errors import DataError
from sentiment_jax.input_pipeline import Split, clean_text

CAD_DIR = Path(__file__).parent / 'data' / 'cad'
SPLITS = ('train', 'dev', 'test')
_LABELS = {'Negative': 0, 'Positive': 1}


@dataclasses.dataclass
class Pairs:
  """Originals and their revisions, aligned: revision i edits original i."""

  originals: Split
  revisions: Split


def load_pairs(name: str) -> Pairs:
  """The pairs of `{name}_paired.tsv` (train, dev or test), texts cleaned.

  Raises DataError naming the file and line of a malformed row or pair.
  """
  if name not in SPLITS:
    raise DataError(f'no counterfactual split {name!r}; choose one of '
                    f'{SPLITS}')
  path = CAD_DIR / f'{name}_paired.tsv'
  with open(path, newline='', encoding='utf-8') as f:
    rows = list(csv.reader(f, delimiter='\t'))
  if rows[0] != ['Sentiment', 'Text', 'batch_id'] or len(rows) % 2 == 0:
    raise DataError(f'{path}: expected a header and rows in pairs')
  texts: tuple[list[str], list[str]] = ([], [])
  labels: tuple[list[int], list[int]] = ([], [])
  for line in range(1, len(rows), 2):  # Row `line` is file line `line + 1`.
    original, revision = rows[line], rows[line + 1]
    if (len(original) != 3 or len(revision) != 3
        or original[2] != revision[2]
        or {original[0], revision[0]} != set(_LABELS)):
      raise DataError(f'{path}:{line + 1}: not a pair of opposite labels '
                      'with one batch_id')
    for half, (label, text, _) in enumerate((original, revision)):
      texts[half].append(clean_text(text))
      labels[half].append(_LABELS[label])
  return Pairs(*(Split(t, np.asarray(l, np.int32))
                 for t, l in zip(texts, labels)))


def pair_accuracy(correct_originals: np.ndarray, correct_revisions: np.ndarray
                  ) -> dict[str, float | int | None]:
  """Accuracy on the originals, on the revisions, and on whole pairs (both
  halves right), from `[n]` bool correctness of each half; None for no pairs."""
  correct_originals = np.asarray(correct_originals, bool)
  correct_revisions = np.asarray(correct_revisions, bool)
  rate = lambda x: float(x.mean()) if len(x) else None
  return {'num_pairs': int(len(correct_originals)),
          'original_accuracy': rate(correct_originals),
          'revised_accuracy': rate(correct_revisions),
          'pair_accuracy': rate(correct_originals & correct_revisions)}
