"""Study 6, adversarial robustness: a greedy synonym attack and a HotFlip attack.

Both edit the same fixed sample of test reviews that the transformer and the
baseline both classify correctly.

* `synonym_strict` / `synonym_lax`, black box (both models): words are ranked
  by how much deleting them lowers P(true label), then replaced in that order
  by the lexicon neighbour that lowers it most, until the label flips. Each
  word is visited once. Strict uses only same-strength synonyms and changes at
  most 10% of the words; lax adds looser neighbours and has no cap.
* `hotflip`, white box (transformer only; TF-IDF has no embeddings to take
  gradients through): each step takes `jax.grad` of the true-class margin
  w.r.t. the token embeddings, estimates to first order what replacing a
  whole-word token with any whole-word vocabulary token would do (Ebrahimi et
  al. 2018), and makes the best flip among the `POSITIONS` positions with the
  largest gradient, up to `HOTFLIP_BUDGET` of the tokens. The flips need not keep
  the meaning: it measures how few token edits flip the model.
"""

from __future__ import annotations

import functools
import math
import random
import string
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from analysis import context as context_lib, lexicon as lx
from sentiment_jax import input_pipeline, metrics

STRICT_SHARE = 0.10  # Strict: at most this share of the words changed.
HOTFLIP_BUDGET = 0.05  # HotFlip: at most this share of the tokens flipped.
POSITIONS = 8  # HotFlip: positions with the largest gradient considered.
CHUNK = 20  # HotFlip: reviews per batched step.
EXAMPLES = 3  # Successful attacks shown per attack.


def candidates(word: str, level: str) -> list[str]:
  """Replacements for `word`, keeping its punctuation and capitalisation."""
  core = word.strip(string.punctuation)
  if not core:
    return []
  key = core.lower()
  options = lx.SYNONYMS.get(key, ()) + (lx.LOOSE.get(key, ())
                                        if level == 'lax' else ())
  start = word.index(core)
  fix = (str.capitalize if core[0].isupper() else str)
  return [word[:start] + fix(o) + word[start + len(core):] for o in options]


def _p_true(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
  prob = metrics.p_positive(logits)
  return np.where(labels == 1, prob, 1 - prob)


def synonym_attack(scorer: context_lib.Scorer, texts: list[str],
                   labels: np.ndarray, level: str, progress) -> dict[str, Any]:
  """Greedy substitution on all texts in lock step (one scoring call a round)."""
  words = [t.split(' ') for t in texts]
  positions = [[i for i, w in enumerate(ws) if candidates(w, level)]
               for ws in words]
  budget = [max(1, math.floor(STRICT_SHARE * len(ws))) if level == 'strict'
            else len(ws) for ws in words]
  # Importance: P(true) lost when each candidate word is deleted.
  variants = [(k, i) for k, ps in enumerate(positions) for i in ps]
  deleted = [' '.join(words[k][:i] + words[k][i + 1:]) for k, i in variants]
  p_now = _p_true(scorer.logits(texts), labels)
  p_deleted = _p_true(scorer.logits(deleted), labels[[k for k, _ in variants]])
  queries = np.asarray([1 + len(ps) for ps in positions])
  loss = {v: p_now[v[0]] - p for v, p in zip(variants, p_deleted)}
  order = [sorted(ps, key=lambda i, k=k: -loss[k, i])
           for k, ps in enumerate(positions)]
  changes: list[list[tuple[str, str]]] = [[] for _ in texts]
  fooled = np.zeros(len(texts), bool)
  for round_ in range(max((len(o) for o in order), default=0)):
    jobs = [(k, order[k][round_]) for k in range(len(texts))
            if not fooled[k] and round_ < len(order[k])
            and len(changes[k]) < budget[k]]
    if not jobs:
      break
    tries = [candidates(words[k][i], level) for k, i in jobs]
    edited = [' '.join(words[k][:i] + [c] + words[k][i + 1:])
              for (k, i), cs in zip(jobs, tries) for c in cs]
    owner = np.repeat([k for k, _ in jobs], [len(cs) for cs in tries])
    logits = scorer.logits(edited)
    p_try = _p_true(logits, labels[owner])
    flipped = metrics.decide(logits) != labels[owner]
    start = 0
    for (k, i), cs in zip(jobs, tries):
      queries[k] += len(cs)
      best = start + int(np.argmin(p_try[start:start + len(cs)]))
      if p_try[best] < p_now[k]:
        changes[k].append((words[k][i], cs[best - start]))
        words[k][i] = cs[best - start]
        p_now[k], fooled[k] = p_try[best], flipped[best]
      start += len(cs)
  progress.update()
  share = np.asarray([len(c) / len(ws) for c, ws in zip(changes, words)])
  shown = [{'changes': changes[k], 'p_true_label_after': float(p_now[k]),
            'edited': ' '.join(words[k])[:600]}
           for k in np.flatnonzero(fooled)[:EXAMPLES]]
  return {'num_examples': len(texts),
          'after_attack_accuracy': float(1 - fooled.mean()),
          'attack_success_rate': float(fooled.mean()),
          'words_changed_share_successful': (float(share[fooled].mean())
                                             if fooled.any() else None),
          'queries_per_example': float(queries.mean()),
          'examples': shown}


@functools.partial(jax.jit, static_argnums=0)
def _flip_step(model, params, tokens: jax.Array, labels: jax.Array,
               frozen: jax.Array, allowed: jax.Array):
  """One HotFlip step for `tokens` `[batch, seq]`.

  Returns the logits `[batch, 2]` at `tokens`, and for each text the position,
  the replacement token and the first-order change of the true-class margin
  of the best flip. `frozen` `[batch, seq]` marks positions that may not
  change; `allowed` `[vocab]` marks tokens a flip may write.
  """
  table = params['encoder']['token_embed']['embedding']  # [vocab, embed]
  sign = jnp.where(labels == 1, 1.0, -1.0)

  def margin(delta):
    logits = model.apply({'params': params}, tokens, delta)
    return (sign * (logits[:, 1] - logits[:, 0])).sum(), logits

  grad, logits = jax.grad(margin, has_aux=True)(
      jnp.zeros(tokens.shape + (table.shape[1],), table.dtype))
  norm = jnp.where(frozen, -jnp.inf, jnp.linalg.norm(grad, axis=-1))
  _, top = jax.lax.top_k(norm, POSITIONS)  # [batch, POSITIONS]
  g = jnp.take_along_axis(grad, top[..., None], 1)  # [batch, P, embed]
  current = jnp.take_along_axis(tokens, top, 1)
  # Change of the margin from writing token v at a position: (E_v - E_x) . g
  change = (jnp.einsum('bpe,ve->bpv', g, table)
            - jnp.einsum('bpe,bpe->bp', g, table[current])[..., None])
  blocked = (~allowed)[None, None, :] | jnp.take_along_axis(
      frozen, top, 1)[..., None]
  change = jnp.where(blocked, jnp.inf, change)
  flat = change.reshape(change.shape[0], -1).argmin(-1)
  which, token = jnp.divmod(flat, table.shape[0])
  position = jnp.take_along_axis(top, which[:, None], 1)[:, 0]
  return logits, position, token, change.reshape(change.shape[0], -1).min(-1)


def hotflip_attack(ctx: context_lib.Context, texts: list[str],
                   labels: np.ndarray, progress) -> dict[str, Any]:
  predictor = ctx.predictor
  vocab = predictor.tokenizer.get_vocab()
  allowed = np.zeros(predictor.tokenizer.get_vocab_size(), bool)
  allowed[[i for w, i in vocab.items() if w.isalpha()]] = True
  # Words of several pieces ('devast', '##ated') stay whole: a flip swaps a
  # one-piece word for another.
  continuation = np.zeros_like(allowed)
  continuation[[i for w, i in vocab.items() if w.startswith('##')]] = True
  encoded = predictor.encode(texts)
  d = predictor.config.data
  fooled = np.zeros(len(texts), bool)
  flips = np.zeros(len(texts), int)
  edited_ids = []
  for start in range(0, len(texts), CHUNK):
    ids = encoded.ids[start:start + CHUNK]
    # Padded to max_len, so every chunk reuses one compilation.
    tokens = np.asarray(input_pipeline.pad_batch(ids, d.max_len, d.max_len))
    lengths = np.asarray([len(x) for x in ids])
    budget = np.maximum(1, np.floor(HOTFLIP_BUDGET * (lengths - 1))).astype(int)
    chunk_labels = labels[start:start + CHUNK]
    frozen = (tokens == 0) | continuation[tokens]
    frozen[:, :-1] |= continuation[tokens[:, 1:]]  # A word's first piece.
    frozen[:, 0] = True  # [CLS]
    done = np.zeros(len(ids), bool)
    used = np.zeros(len(ids), int)
    for _ in range(budget.max() + 1):
      logits, position, token, change = map(np.asarray, _flip_step(
          predictor.model, predictor.params, jnp.asarray(tokens),
          jnp.asarray(chunk_labels), jnp.asarray(frozen), jnp.asarray(allowed)))
      done |= metrics.decide(logits) != chunk_labels
      # No finite change: every position is frozen.
      act = ~done & (used < budget) & np.isfinite(change)
      if not act.any():
        break
      rows = np.flatnonzero(act)
      tokens[rows, position[rows]] = token[rows]
      frozen[rows, position[rows]] = True
      used[rows] += 1
    fooled[start:start + len(ids)] = done
    flips[start:start + len(ids)] = used
    edited_ids += [row[:n] for row, n in zip(tokens, lengths)]
    progress.update()
  share = flips / np.maximum(encoded.lengths - 1, 1)
  token = predictor.tokenizer.id_to_token
  shown = [{'changes': [(token(int(a)), token(int(b))) for a, b in zip(
                encoded.ids[k], edited_ids[k]) if a != b],
            'edited': predictor.tokenizer.decode(edited_ids[k].tolist())[:600]}
           for k in np.flatnonzero(fooled)[:EXAMPLES]]
  return {'num_examples': len(texts),
          'after_attack_accuracy': float(1 - fooled.mean()),
          'attack_success_rate': float(fooled.mean()),
          'tokens_changed_share_successful': (float(share[fooled].mean())
                                              if fooled.any() else None),
          'queries_per_example': float((flips + 1).mean()),
          'query_kind': 'forward and backward passes',
          'examples': shown}


def sample(ctx: context_lib.Context) -> tuple[list[str], np.ndarray]:
  """Test reviews both models classify correctly, a fixed random sample."""
  test = ctx.splits['test']
  both = np.ones(len(test.labels), bool)
  for scorer in ctx.scorers:
    both &= metrics.decide(scorer.split_logits('test')) == test.labels
  index = sorted(random.Random(ctx.options.seed).sample(
      list(np.flatnonzero(both)), min(ctx.options.attack_examples,
                                      int(both.sum()))))
  return [test.texts[i] for i in index], test.labels[index]


def run(ctx: context_lib.Context, scorer: context_lib.Scorer, progress
        ) -> dict[str, Any]:
  texts, labels = sample(ctx)
  out = {level: synonym_attack(scorer, texts, labels, level.split('_')[1],
                               progress)
         for level in ('synonym_strict', 'synonym_lax')}
  if scorer.name == 'transformer':
    out['hotflip'] = hotflip_attack(ctx, texts, labels, progress)
  else:
    out['hotflip'] = {'after_attack_accuracy': None,
                      'skipped': 'needs gradients w.r.t. token embeddings; '
                                 'TF-IDF has none'}
    progress.update(_chunks(ctx))
  return out


def _chunks(ctx: context_lib.Context) -> int:
  return -(-min(ctx.options.attack_examples, len(ctx.splits['test'].labels))
           // CHUNK)


def steps(ctx: context_lib.Context) -> int:
  return 2 + _chunks(ctx)
