"""The offline HTML pages, rendered from `templates/` by Jinja2 with autoescaping.

The dump's text and index pages, and the server's demo page. Pages are
self-contained: the style sheet and script are inlined, figures are data
URIs, and the only links are relative (to sibling files of the dump, or to
the server's own API).
"""

from __future__ import annotations

import base64
from pathlib import Path

import jinja2
import numpy as np

from sentiment_jax import models
from sentiment_jax.explain.attribution import Explanation

REFERENCE = (
    'Abnar & Zuidema (2020, "Quantifying Attention Flow in Transformers", '
    'arXiv:2005.00928, Table 3) report Spearman correlations of only 0.08-0.13 '
    '(std about 0.2) between raw attention or rollout and input-gradient '
    'importance for DistilBERT fine-tuned on SST-2.')
TOP_WORDS = 10  # Rows of the "top words by each score" table.
_UNSIGNED, _POSITIVE, _NEGATIVE = '255,140,0', '46,125,50', '198,40,40'
# The word scores each text page offers as an alternative highlighting.
_VIEWS = (('attention', 'raw last-layer attention', False),
          ('gradient_x_input', 'gradient x input (green: towards positive, '
           'red: towards negative)', True),
          ('occlusion', 'occlusion (green: deleting the word lowers '
           'P(positive))', True),
          ('masking', 'masking (green: masking the word lowers P(positive))',
           True))
_FIGURES = (('rollout.png', 'attention rollout'),
            ('pooled.png', 'attention from the pooled position'),
            ('heads.png', 'attention per layer and head'))


def rules_note(model: models.TransformerConfig) -> str:
  """One sentence naming the negation and contrast rules the model applies
  to its input, and what they do to the scores; '' when it applies none."""
  rules = []
  if model.negator_ids and model.negation_flip:
    reach = (f'the {model.negation_window} pieces after a negator (not, no, '
             "never, n't ...) enter" if model.negation_window else
             "the rest of the clause after a negator (not, no, never, n't "
             '...) enters')
    rules.append(f'{reach} reversed by a learned gain')
    if model.silence_negators:
      rules.append('the negator itself enters as zeros')
  if model.contrast_ids:
    rules.append('a sentence\'s pieces up to and including "but" enter '
                 'scaled by a learned gain that starts at zero')
  if not rules:
    return ''
  return ('This model reads by rule: ' + '; '.join(rules) + '. A piece that '
          'enters scaled to near zero scores near zero by gradient x input: '
          'the model does not read it.')


def _number(value: float | None, digits: int = 3) -> str:
  return 'n/a' if value is None else f'{value:.{digits}f}'


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / 'templates'),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
    lstrip_blocks=True)
_ENV.filters['number'] = _number


def highlight(ex: Explanation, scores: np.ndarray, signed: bool
              ) -> list[dict]:
  """The text as segments: plain, dropped by truncation, or a scored word.

  A word's background alpha is its |score| relative to the text's largest;
  unsigned scores shade orange, signed ones green (towards positive) or red.
  """
  peak = np.abs(scores).max(initial=0) or 1.0
  spans = sorted([(start, stop, word) for word, (start, stop)
                  in enumerate(ex.word_spans)]
                 + [(start, stop, None) for start, stop in ex.dropped_spans])
  segments, end = [], 0
  for start, stop, word in spans:
    segments.append({'kind': 'plain', 'text': ex.text[end:start]})
    end = stop
    if word is None:
      segments.append({'kind': 'dropped', 'text': ex.text[start:stop]})
      continue
    colour = (_UNSIGNED if not signed else
              _POSITIVE if scores[word] > 0 else _NEGATIVE)
    segments.append({
        'kind': 'word', 'text': ex.text[start:stop], 'colour': colour,
        'alpha': 0.85 * abs(scores[word]) / peak,
        'tip': ' | '.join(f'{name} {values[word]:+.4f}'
                          for name, values in ex.word_scores.items())})
  segments.append({'kind': 'plain', 'text': ex.text[end:]})
  return segments


def text_page(ex: Explanation, meta: dict, folder: Path) -> str:
  """One text's page; `folder` holds its figures, inlined as data URIs."""
  words = ex.words
  top_words = {name: [(words[i], float(scores[i])) for i in np.argsort(
                   -np.abs(scores), kind='stable')[:TOP_WORDS]]
               for name, scores in ex.word_scores.items()}
  images = [{'alt': alt, 'data': base64.b64encode(
                (folder / name).read_bytes()).decode('ascii')}
            for name, alt in _FIGURES]
  return _ENV.get_template('text.html').render(
      title=f'Attention: text {folder.name}', meta=meta,
      rollout=highlight(ex, ex.word_scores['rollout'], signed=False),
      views=[{'label': label,
              'segments': highlight(ex, ex.word_scores[name], signed)}
             for name, label, signed in _VIEWS],
      top_words=top_words, top_rows=min(TOP_WORDS, len(words)),
      images=images, reference=REFERENCE)


def index_page(entries: list[dict], summary: dict, context: dict,
               rules: str = '') -> str:
  """The dump's index: one row per text and the faithfulness summary;
  `rules` is `rules_note` of the model."""
  return _ENV.get_template('index.html').render(
      title='Attention dumps', entries=entries, summary=summary,
      context=context, rules=rules, reference=REFERENCE)


def serve_page(checkpoint_step: int, views: list[str], calibrated: bool,
               rules: str = '') -> str:
  """The server's demo page: a form, the answer, and switchable highlights;
  `rules` is `rules_note` of the served model."""
  return _ENV.get_template('serve.html').render(
      title='sentiment_jax demo', checkpoint_step=checkpoint_step,
      views=views, calibrated=calibrated, rules=rules, reference=REFERENCE)
