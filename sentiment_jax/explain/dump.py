"""Dump orchestration: one folder of arrays, figures and a page per text, plus an index.

`--attention_dump=DIR` with `--mode=predict` or `--mode=eval` writes, per text,
`DIR/NNN/` holding `attention.npz`, `meta.json`, `heads.png`, `pooled.png`,
`rollout.png` and a self-contained `index.html`, plus `DIR/index.html` and
`DIR/summary.json` over all texts. `--attention_layers` and
`--attention_heads` select what the figures draw; the arrays, rollout and
faithfulness numbers always use every layer and head. Every process computes
(the forward passes are collective); only process 0 writes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tqdm

from sentiment_jax import inference, metrics, workdir as workdir_lib
from sentiment_jax.explain import attribution, figures, page
from sentiment_jax.explain import request as explain_request


def _model_summary(predictor: inference.Predictor) -> dict:
  m = predictor.model.config
  return {'num_layers': m.num_layers, 'num_heads': m.num_heads,
          'embed_dim': m.embed_dim, 'mlp_dim': m.mlp_dim,
          'pooling': m.pooling, 'max_len': m.max_len,
          'vocab_size': m.vocab_size}


def _write_text(ex: attribution.Explanation, folder: Path,
                predictor: inference.Predictor,
                layers: list[int], heads: list[int], label: int | None,
                group: str | None) -> dict:
  """Writes one text's files into `folder`; returns its meta.json content."""
  folder.mkdir(parents=True, exist_ok=True)
  pooling = predictor.model.config.pooling
  rollout_matrix = attribution.rollout(ex.weights)
  np.savez_compressed(folder / 'attention.npz',
                      weights=ex.weights.astype(np.float32),
                      tokens=np.asarray(ex.tokens), word_index=ex.word_index,
                      rollout=rollout_matrix.astype(np.float32))
  figures.plot_heads(ex.weights, ex.tokens, layers, heads, folder / 'heads.png')
  figures.plot_pooled(ex.weights, ex.tokens, layers, heads, pooling,
              folder / 'pooled.png')
  figures.plot_rollout(attribution.pooled_attention(rollout_matrix, pooling), ex.tokens,
               folder / 'rollout.png')
  correct = None if label is None else ex.predicted_label == label
  strategy = predictor.config.data.get('truncation', 'head')
  meta = {
      'folder': folder.name,
      'text': ex.text,
      'tokens': ex.tokens,
      'words': ex.words,
      'label': label,
      'label_name': None if label is None else metrics.LABEL_NAMES[label],
      'prediction': metrics.LABEL_NAMES[ex.predicted_label],
      'p_positive': ex.p_positive,
      'correct': correct,
      'group': group,
      'model': _model_summary(predictor),
      'checkpoint_step': predictor.step,
      'pooled_position': ('row 0 ([CLS])' if pooling == 'cls' else
                          'mean over the query rows of the real tokens'),
      'figures': {'layers': layers, 'heads': heads},
      'truncation': {'truncated': ex.truncated_tokens > 0,
                     'num_tokens': len(ex.tokens),
                     'full_num_tokens': ex.full_num_tokens,
                     'dropped_tokens': ex.truncated_tokens,
                     'max_len': predictor.model.config.max_len,
                     'strategy': strategy,
                     'notice': (
                         f'This text has {ex.full_num_tokens} tokens; the '
                         f'model reads at most {len(ex.tokens)}, so '
                         f'{ex.truncated_tokens} were dropped '
                         f'(data.truncation={strategy}; greyed out on the '
                         'page) and are not analysed.'
                         if ex.truncated_tokens else None)},
      'word_scores': {k: v.tolist() for k, v in ex.word_scores.items()},
      'p_positive_without_word': ex.p_without_word.tolist(),
      'p_positive_word_masked': ex.p_word_masked.tolist(),
      'faithfulness': attribution.faithfulness(ex.word_scores),
      'definitions': attribution.__doc__,
  }
  workdir_lib.write_atomic(folder / 'meta.json', json.dumps(meta, indent=2))
  workdir_lib.write_atomic(folder / 'index.html',
                           page.text_page(ex, meta, folder))
  return meta


def dump_texts(predictor: inference.Predictor, texts: Sequence[str],
               request: explain_request.DumpRequest,
               labels: Sequence[int] | None = None,
               groups: Sequence[str] | None = None,
               context: dict | None = None) -> dict | None:
  """Dumps each text into `request.directory/NNN/` and writes the index.

  `labels` (0/1) and `groups` (e.g. 'confident_mistake') are optional, one
  per text; `context` describes the selection on the index page. Returns the
  summary written to summary.json (None on processes that do not write).
  """
  layers, heads = request.check(predictor.model.config)
  explanations = attribution.explain(predictor, texts)
  if not workdir_lib.is_writer():
    return None
  entries = []
  for i, ex in enumerate(tqdm.tqdm(explanations, desc='attention dumps',
                                   leave=False, disable=len(texts) < 5)):
    entries.append(_write_text(
        ex, request.directory / f'{i:03d}', predictor, layers, heads,
        None if labels is None else int(labels[i]),
        None if groups is None else groups[i]))
    if entries[-1]['truncation']['notice']:
      print(f'attention dump {i:03d}: {entries[-1]["truncation"]["notice"]}',
            file=sys.stderr)
  context = dict(context or {}, checkpoint_step=predictor.step)
  rules = page.rules_note(predictor.model.config)
  summary = {'num_texts': len(entries), **context, 'model_rules': rules,
             'faithfulness': attribution.summarize(
                 [e['faithfulness'] for e in entries]),
             'reference': page.REFERENCE}
  workdir_lib.write_atomic(request.directory / 'summary.json',
                           json.dumps(summary, indent=2))
  workdir_lib.write_atomic(request.directory / 'index.html',
                           page.index_page(entries, summary['faithfulness'],
                                           context, rules))
  print(f'attention dumps of {len(entries)} texts: '
        f'{request.directory / "index.html"}', file=sys.stderr)
  return summary


def dump_eval(predictor: inference.Predictor, scored: inference.Scored,
              request: explain_request.DumpRequest) -> dict:
  """Dumps the most confident correct and wrong predictions of a scored split."""
  chosen = metrics.confident_examples(scored.logits, scored.data.labels,
                                      request.num_examples)
  groups = [group for _, group in chosen]
  return dump_texts(
      predictor, [scored.data.texts[i] for i, _ in chosen], request,
      labels=[scored.data.labels[i] for i, _ in chosen], groups=groups,
      context={'split': scored.name,
               'confident_correct': groups.count('confident_correct'),
               'confident_mistakes': groups.count('confident_mistake')})
