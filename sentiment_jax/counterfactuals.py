"""Automatic counterfactuals: training reviews with their cue words edited and
the label flipped (in the spirit of Wang and Culotta, AAAI 2021).

A review is edited only when every cue word it holds (from `ANTONYMS`, our
own lexicon) has the review's polarity and none of them is already negated:
then the cues are what the label rests on, and editing all of them should
flip it. Two edits: `antonym` swaps each cue for an antonym ("a stunning
film" -> "an unremarkable film"), `negate` puts "not" before it ("was
stunning" -> "was not stunning"). The lexicon shares no word with the
behavioural suite's lexicons and templates or the attack's synonym lists
(`analysis/lexicon.py`; a test checks), so the suite still measures whether
what the model learns here generalises: the `negate` edit teaches "not" on
our cue words, and the suite's negation tests put it before its own. Only
the texts it is given are read: `data_sources` gives it the training split
alone.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

# (positive, negative) cue pairs: each is the other's antonym. Pairs were
# dropped whose commoner word sits in reviews of its polarity less than 60%
# of the time in our training split (talented, convincing, competent,
# coherent, credible, worthwhile, likeable, appealing, intelligent): editing
# a word the label does not rest on would only add label noise.
_PAIRS = (
    ('stunning', 'unremarkable'), ('memorable', 'unmemorable'),
    ('impressive', 'unimpressive'), ('satisfying', 'unsatisfying'),
    ('effective', 'ineffective'), ('rewarding', 'unrewarding'),
    ('underrated', 'overrated'), ('riveting', 'unwatchable'),
    ('fascinating', 'tiresome'), ('polished', 'amateurish'),
    ('witty', 'witless'), ('awesome', 'atrocious'),
    ('admirable', 'pathetic'), ('magnificent', 'abysmal'),
    ('glorious', 'horrid'), ('refreshing', 'stale'),
    ('dazzling', 'lackluster'), ('sublime', 'inane'),
    ('masterpiece', 'flop'), ('gem', 'dud'), ('skillfully', 'poorly'),
    ('superbly', 'abysmally'), ('powerful', 'toothless'),
)
ANTONYMS = {**{p: n for p, n in _PAIRS}, **{n: p for p, n in _PAIRS}}
POLARITY = {**{p: 1 for p, _ in _PAIRS}, **{n: 0 for _, n in _PAIRS}}
EDITS = ('antonym', 'negate', 'both')
UNITS = ('review', 'sentence')

_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")
# Words that negate what follows (with any word ending in n't); the encoder's
# negation scope (`input_pipeline.negation_ids`) opens on the same words.
NEGATORS = ('not', 'no', 'never', 'nor', 'cannot', 'without', 'hardly')
_SENTENCE = re.compile(r'(?<=[.!?])\s+')
_NEGATION_WINDOW = 3  # Words before a cue in which a negator disqualifies it.


def _negated(words: list[str], i: int) -> bool:
  before = words[max(0, i - _NEGATION_WINDOW):i]
  return any(w in NEGATORS or w.endswith("n't") for w in before)


def edit(text: str, label: int, how: str) -> str | None:
  """`text` with every cue edited (`how`: 'antonym' or 'negate'), or None when
  it has no cue, a cue of the other polarity, or a cue already negated."""
  matches = list(_WORD.finditer(text))
  words = [m.group().lower() for m in matches]
  cues = [i for i, w in enumerate(words) if w in POLARITY]
  if not cues or any(POLARITY[words[i]] != label or _negated(words, i)
                     for i in cues):
    return None
  pieces, end = [], 0
  for i in cues:
    m = matches[i]
    word = m.group()
    if how == 'antonym':
      new = ANTONYMS[word.lower()]
      new = new.capitalize() if word[0].isupper() else new
      # "a stunning" -> "an unremarkable": keep the article right.
      start = m.start()
      article = re.search(r'\b([Aa]n?) $', text[end:start])
      if article:
        a = article.group(1)
        fixed = (a[0] + 'n') if new[0].lower() in 'aeiou' else a[0]
        pieces.append(text[end:end + article.start(1)] + fixed + ' ')
      else:
        pieces.append(text[end:start])
      pieces.append(new)
    elif how == 'negate':
      pieces += [text[end:m.start()], 'not ', word]
    else:
      raise ValueError(f'unknown edit {how!r}; choose one of {EDITS[:2]}')
    end = m.end()
  return ''.join(pieces) + text[end:]


def generate(texts: Sequence[str], labels: Sequence[int], *, fraction: float,
             how: str, unit: str, seed: int) -> tuple[list[str], list[int]]:
  """Edited copies, label flipped, of a `fraction` of the reviews that can be
  edited, chosen by `seed`; `how='both'` picks the edit per review by seed.

  `unit='review'` adds each edited review; `unit='sentence'` adds, for each
  sentence of it that holds a cue, the sentence with the review's label and
  its edit with the other label: a short pair, as a human counterfactual is.
  Deterministic for a seed; a text is flipped only if an edit changed it.
  """
  if how not in EDITS or unit not in UNITS:
    raise ValueError(f'edit {how!r}, unit {unit!r}: choose from {EDITS} and '
                     f'{UNITS}')
  rng = random.Random(seed)
  new_texts, new_labels = [], []
  for text, label in zip(texts, labels):
    # Draw for every review, so a review's fate does not depend on others'.
    chosen, coin = rng.random() < fraction, rng.random() < 0.5
    kind = how if how != 'both' else ('antonym' if coin else 'negate')
    label = int(label)
    whole = edit(text, label, kind) if chosen else None
    if whole is None:
      continue
    edits = ([(text, whole)] if unit == 'review' else
             [(part, edit(part, label, kind))
              for part in _SENTENCE.split(text)])
    for part, edited in edits:
      if edited is not None and edited != part:
        if unit == 'sentence':
          new_texts.append(part)
          new_labels.append(label)
        new_texts.append(edited)
        new_labels.append(1 - label)
  return new_texts, new_labels
