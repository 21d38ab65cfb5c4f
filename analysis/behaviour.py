"""Study 2, a CheckList-style behavioural suite for binary movie sentiment.

Capabilities are tested three ways (Ribeiro et al. 2020):

* MFT, minimum functionality: templated sentences whose label the template
  fixes; a failure is a wrong label.
* INV, invariance: a real test review and an edit that should not matter; a
  failure is a changed label.
* DIR, directional: a real test review with a strongly positive (negative)
  closing sentence added; a failure is P(positive) moving the other way by
  more than `DIR_TOLERANCE`, CheckList's tolerance for its sentiment suite.

Expansion is deterministic for a seed. Each MFT case records the word that
decides it (`cue`) and whether it is negated, so a test can re-derive its
label. These cases are for measurement only: nothing here feeds training.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import re
from collections.abc import Callable
from typing import Any


from analysis import context as context_lib, lexicon as lx, stats
from sentiment_jax import metrics

MFT_CASES = 150  # Cases sampled from each MFT test's full expansion.
DIR_TOLERANCE = 0.1  # Allowed move of P(positive) against the direction.
EXAMPLES = 3  # Failures shown per test.


@dataclasses.dataclass
class Case:
  text: str
  label: int | None = None  # MFT: the expected label.
  original: str | None = None  # INV and DIR: the unedited review.
  cue: str | None = None  # MFT: the word whose polarity decides the label.
  negated: bool = False  # MFT: whether the cue is negated.


@dataclasses.dataclass
class Test:
  name: str
  kind: str  # MFT, INV or DIR.
  description: str
  cases: list[Case]
  direction: int = 0  # DIR: +1 if P(positive) should rise, -1 if fall.


def polarity(word: str) -> int:
  """1 for a positive lexicon word, 0 for a negative one."""
  if word in lx.POSITIVE_ADJECTIVES or word in lx.POSITIVE_VERBS:
    return 1
  if word in lx.NEGATIVE_ADJECTIVES or word in lx.NEGATIVE_VERBS:
    return 0
  raise KeyError(f'{word!r} is in no sentiment list')


def _adjectives():
  return [(a, 1) for a in lx.POSITIVE_ADJECTIVES] + [
      (a, 0) for a in lx.NEGATIVE_ADJECTIVES]


# Template -> the outcome's polarity it needs to overturn its expectation
# (None: any outcome).
_OVERTURNED = {'I expected to love this {n}, but it was {adj}.': 0,
               'I thought I would hate this {n}, but it was {adj}.': 1,
               'At first the {n} seemed promising, in the end it was {adj}.':
                   None}


def _mft_cases() -> dict[str, tuple[str, list[Case]]]:
  """Every MFT test's full expansion: name -> (description, cases)."""
  adjectives, verbs = _adjectives(), [(v, 1) for v in lx.POSITIVE_VERBS] + [
      (v, 0) for v in lx.NEGATIVE_VERBS]
  article = lambda word: ('an ' if word[0] in 'aeiou' else 'a ') + word
  simple = lambda want: (
      [Case(f'The {n} was {adj}.', p, cue=adj) for n in lx.NOUNS
       for adj, p in adjectives if p == want]
      + [Case(f'This is {article(adj)} {n}.', p, cue=adj) for n in lx.NOUNS
         for adj, p in adjectives if p == want]
      + [Case(f'I {v} this {n}.', p, cue=v) for n in lx.NOUNS
         for v, p in verbs if p == want])
  return {
      'simple_positive': ('Short positive statements', simple(1)),
      'simple_negative': ('Short negative statements', simple(0)),
      'intensifiers': ('An intensified adjective keeps its polarity', [
          Case(f'The {n} was {i} {adj}.', p, cue=adj)
          for n, i, (adj, p) in itertools.product(
              lx.NOUNS, lx.INTENSIFIERS, adjectives)]),
      'negated_positive': ('A negated positive is negative', [
          Case(t.format(n=n, adj=adj), 0, cue=adj, negated=True)
          for n in lx.NOUNS for adj in lx.POSITIVE_ADJECTIVES
          for t in ('The {n} was not {adj}.', 'This {n} is not {adj} at all.',
                    "I don't think the {n} was {adj}.")]),
      'negated_negative': ('A negated negative is positive (CheckList: '
                           'positive or neutral; binary forces positive)', [
          Case(t.format(n=n, adj=adj), 1, cue=adj, negated=True)
          for n in lx.NOUNS for adj in lx.NEGATIVE_ADJECTIVES
          for t in ('The {n} was not {adj}.', 'This {n} is not {adj} at all.',
                    "I don't think the {n} was {adj}.")]),
      'contrast_but': ('In "X but Y", the clause after "but" decides', [
          Case(f'The {n1} was {a1}, but the {n2} was {a2}.', p2, cue=a2)
          for n1, n2 in itertools.permutations(lx.NOUNS, 2)
          for (a1, p1), (a2, p2) in itertools.product(adjectives, adjectives)
          if p1 != p2]),
      'change_over_time': ('An expectation overturned: the outcome decides', [
          Case(t.format(n=n, adj=adj), p, cue=adj)
          for n in lx.NOUNS for adj, p in adjectives
          for t, outcome in _OVERTURNED.items() if outcome in (None, p)]),
      'sarcasm': ('Mild sarcasm, read as negative', [
          Case(t.format(n=n, adj=adj), 0, cue=None)
          for n in lx.NOUNS for adj in lx.POSITIVE_ADJECTIVES[:6]
          for t in ('Oh {adj}, another {n} that wastes two hours of my life.',
                    'What a {adj} way to lose an evening: this {n}.',
                    'Sure, the {n} was {adj}, if you enjoy falling asleep.')])}


def _edit_reviews(reviews: list[str], edit: Callable[[str, random.Random],
                                                     str | None],
                  rng: random.Random, limit: int) -> list[Case]:
  cases = []
  for text in reviews:
    edited = edit(text, rng)
    if edited is not None and edited != text:
      cases.append(Case(edited, original=text))
    if len(cases) == limit:
      break
  return cases


_NAME = re.compile(r'\b(' + '|'.join(lx.PERSON_NAMES + lx.PLACES) + r')\b')


def swap_names(text: str, rng: random.Random) -> str | None:
  """Every known person or place name replaced by another of its kind."""
  if not _NAME.search(text):
    return None
  def other(match):
    pool = lx.PERSON_NAMES if match.group(0) in lx.PERSON_NAMES else lx.PLACES
    return rng.choice([n for n in pool if n != match.group(0)])
  return _NAME.sub(other, text)


def add_typos(text: str, rng: random.Random, count: int = 2) -> str:
  """`count` words of 4+ letters with two neighbouring letters swapped."""
  words = text.split(' ')
  long_words = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
  for i in rng.sample(long_words, min(count, len(long_words))):
    w, j = words[i], rng.randrange(len(words[i]) - 1)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
  return ' '.join(words)


def change_case_punctuation(text: str, rng: random.Random) -> str:
  """Lower-cased with sentence-final punctuation dropped, or upper-cased."""
  if rng.random() < 0.5:
    return re.sub(r'[.!?]+(\s|$)', r'\1', text.lower())
  return text.upper()


def add_neutral(text: str, rng: random.Random) -> str:
  sentence = rng.choice(lx.NEUTRAL_SENTENCES)
  return f'{sentence} {text}' if rng.random() < 0.5 else f'{text} {sentence}'


def toggle_contractions(text: str, rng: random.Random) -> str | None:
  """Contractions expanded, or else expanded forms contracted (any case)."""
  del rng  # Deterministic.
  for source in (lx.CONTRACTIONS, {v: k for k, v in lx.CONTRACTIONS.items()}):
    lower = {k.lower(): v for k, v in source.items()}
    pattern = re.compile(r'\b(' + '|'.join(map(re.escape, source)) + r')(?!\w)',
                         re.IGNORECASE)

    def replace(match, lower=lower):
      found = match.group(0)
      new = lower[found.lower()]
      return new[0].upper() + new[1:] if found[0].isupper() else new

    if pattern.search(text):
      return pattern.sub(replace, text)
  return None


def build(reviews: list[str], seed: int, mft_cases: int = MFT_CASES,
          edit_cases: int = 200) -> list[Test]:
  """The suite: MFTs sampled from templates, INV/DIR edits of `reviews`."""
  rng = random.Random(seed)
  tests = [Test(name, 'MFT', description,
                rng.sample(cases, min(mft_cases, len(cases))))
           for name, (description, cases) in _mft_cases().items()]
  template_names = [Case(
      f'I watched {f} in {pl} with {pe}. The {n} was {adj}.', original=None)
      for f, pl, pe, n, (adj, _) in itertools.islice(itertools.product(
          lx.FILMS, lx.PLACES, lx.PERSON_NAMES, lx.NOUNS[:2], _adjectives()),
          0, None, 997)]
  for case in template_names:
    case.original, case.text = case.text, swap_names(case.text, rng)
    film = rng.choice(lx.FILMS)
    case.text = re.sub('|'.join(lx.FILMS), film, case.text)
  edits = [('swap_names', 'Person, place and film names swapped',
            swap_names), ('typos', 'Two typos (swapped letters)', add_typos),
           ('case_punctuation', 'Lower case without final punctuation, or '
            'upper case', change_case_punctuation),
           ('neutral_sentence', 'A neutral sentence added', add_neutral),
           ('contractions', 'Contractions expanded or made', toggle_contractions)]
  for name, description, edit in edits:
    cases = _edit_reviews(reviews, edit, rng, edit_cases)
    if name == 'swap_names':
      cases += template_names
    tests.append(Test(name, 'INV', description, cases))
  for name, closings, direction in (
      ('add_positive_closing', lx.POSITIVE_CLOSINGS, 1),
      ('add_negative_closing', lx.NEGATIVE_CLOSINGS, -1)):
    cases = [Case(f'{text} {rng.choice(closings)}', original=text)
             for text in reviews[:edit_cases]]
    tests.append(Test(name, 'DIR', f'A strongly {"positive" if direction > 0 else "negative"} '
                      'closing sentence moves P(positive) that way', cases,
                      direction))
  return tests


def evaluate(test: Test, p_positive: Callable[[str], float]
             ) -> dict[str, Any]:
  """Failure rate, Wilson interval and example failures of one test."""
  failures = []
  for case in test.cases:
    p = p_positive(case.text)
    if test.kind == 'MFT':
      failed = (p >= metrics.THRESHOLD) != bool(case.label)
      shown = {'text': case.text, 'label': case.label, 'p_positive': p}
    else:
      before = p_positive(case.original)
      if test.kind == 'INV':
        failed = (p >= metrics.THRESHOLD) != (before >= metrics.THRESHOLD)
      else:
        failed = test.direction * (p - before) < -DIR_TOLERANCE
      shown = {'original': case.original[:300], 'edited': case.text[:300],
               'p_positive_before': before, 'p_positive_after': p}
    if failed:
      failures.append(shown)
  n = len(test.cases)
  return {'name': test.name, 'type': test.kind,
          'description': test.description, 'n': n,
          'failure_rate': len(failures) / n if n else None,
          'ci95': stats.wilson(len(failures), n),
          'examples': failures[:EXAMPLES]}


def run(ctx: context_lib.Context, scorer: context_lib.Scorer, progress
        ) -> dict[str, Any]:
  options = ctx.options
  rng = random.Random(options.seed)
  test_texts = ctx.splits['test'].texts
  reviews = rng.sample(test_texts, len(test_texts))
  tests = build(reviews, options.seed, edit_cases=options.dir_examples)
  texts = sorted({t for test in tests for c in test.cases
                  for t in (c.text, c.original) if t is not None})
  # Raw P(positive): labels and directions do not depend on the temperature.
  prob = dict(zip(texts, metrics.p_positive(scorer.logits(
      texts, f'{scorer.name}: behaviour cases'))))
  progress.update()
  results = []
  for test in tests:
    results.append(evaluate(test, lambda text: float(prob[text])))
  progress.update()
  return {'num_cases': sum(len(t.cases) for t in tests),
          'num_tests': len(tests), 'dir_tolerance': DIR_TOLERANCE,
          'tests': results}


def steps(ctx: context_lib.Context) -> int:
  del ctx
  return 2
