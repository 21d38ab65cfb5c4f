"""The explain package: rollout and word maths by hand, the files a tiny trained
run dumps through the CLI, occlusion on a word the model keys on, bad flags,
and pages that are offline by construction (parsed, not grepped)."""

from __future__ import annotations

import html
import html.parser
import json
import re
import urllib.parse
from pathlib import Path

import jax
import numpy as np
import pytest

from configs import tiny
from sentiment_jax import errors, inference, metrics, models
from sentiment_jax.explain import attribution, page
from sentiment_jax.explain.request import DumpRequest

from helpers import check_ok, copy_run, run_cli

TEXT_FILES = ('attention.npz', 'meta.json', 'heads.png', 'pooled.png',
              'rollout.png', 'index.html')


def test_rollout_of_two_layers_is_the_hand_computed_product():
  # Layer 1: heads average to [[1, 0], [.5, .5]], so Â1 = [[1, 0], [.25, .75]].
  layer_1 = [[[1, 0], [1, 0]], [[1, 0], [0, 1]]]
  # Layer 2: both heads [[0, 1], [0, 1]], so Â2 = [[.5, .5], [0, 1]].
  layer_2 = [[[0, 1], [0, 1]], [[0, 1], [0, 1]]]
  result = attribution.rollout(np.asarray([layer_1, layer_2], np.float64))
  # Â2 @ Â1 (later layer on the left); Â1 @ Â2 would be [[.5, .5], ...].
  np.testing.assert_allclose(result, [[0.625, 0.375], [0.25, 0.75]])
  np.testing.assert_allclose(attribution.pooled_attention(result, 'cls'),
                             [0.625, 0.375])
  np.testing.assert_allclose(attribution.pooled_attention(result, 'mean'),
                             [0.4375, 0.5625])


def test_subword_scores_are_summed_into_words():
  tokens = ['[CLS]', 'un', '##believ', '##able', 'film', '!', '[PAD]']
  index = attribution.word_index(tokens)
  np.testing.assert_array_equal(index, [-1, 0, 0, 0, 1, 2, -1])
  scores = np.asarray([0.5, 0.1, 0.2, 0.3, 0.25, 0.05, 0.9])
  np.testing.assert_allclose(attribution.merge_to_words(scores, index),
                             [0.6, 0.25, 0.05])


def test_truncation_cut_does_not_glue_a_piece_to_another_word():
  pieces = [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
  np.testing.assert_array_equal(attribution.kept_positions(pieces, [11, 12, 13]),
                                [0, 1, 2])
  kept = attribution.kept_positions(pieces, [11, 12, 19, 20])  # Head + tail.
  np.testing.assert_array_equal(kept, [0, 1, 8, 9])
  # '##ible' follows 'te ##r' in the model input, but the middle was dropped.
  index = attribution.word_index(['[CLS]', 'te', '##r', '##ible', 'film'],
                               [-1, 0, 1, 8, 9])
  np.testing.assert_array_equal(index, [-1, 0, 0, 1, 2])


def logits_for(prob) -> np.ndarray:
  """`[n, 2]` logits whose softmax gives P(positive) = prob."""
  prob = np.asarray(prob, np.float64)
  return np.stack([np.zeros_like(prob), np.log(prob / (1 - prob))], axis=1)


def test_confident_examples_takes_the_most_confident_of_each_kind():
  labels = np.asarray([1, 1, 0, 0, 1, 0])
  logits = logits_for([0.99, 0.6, 0.02, 0.9, 0.3, 0.55])
  # Correct: 0 (.49), 2 (.48), 1 (.1). Wrong: 3 (.4), 4 (.2), 5 (.05).
  assert metrics.confident_examples(logits, labels, 4) == [
      (0, 'confident_correct'), (2, 'confident_correct'),
      (3, 'confident_mistake'), (4, 'confident_mistake')]
  # When one kind runs short, the other fills in.
  assert [g for _, g in metrics.confident_examples(
      logits_for([0.9, 0.8, 0.1]), np.asarray([1, 1, 1]), 3)] == [
          'confident_correct', 'confident_correct', 'confident_mistake']
  assert [g for _, g in metrics.confident_examples(
      logits_for([0.9, 0.8, 0.1]), np.asarray([0, 0, 0]), 3)] == [
          'confident_correct', 'confident_mistake', 'confident_mistake']


def test_spearman_is_undefined_for_constant_or_tiny_inputs():
  assert attribution.spearman(np.ones(5), np.arange(5.0)) is None
  assert attribution.spearman(np.arange(2.0), np.arange(2.0)) is None
  reversed_order = attribution.spearman(np.arange(5.0), -np.arange(5.0))
  assert reversed_order == pytest.approx(-1)


def make_random_model(**overrides):
  config = models.TransformerConfig(vocab_size=40, max_len=16, num_layers=2,
                                    num_heads=2, embed_dim=16, mlp_dim=32,
                                    deterministic=True, **overrides)
  model = models.Classifier(config)
  params = jax.jit(model.init)(jax.random.PRNGKey(0),
                               np.zeros((1, 16), np.int32))['params']
  return model, params


@pytest.fixture(scope='module')
def random_model():
  return make_random_model()


def test_padding_gets_zero_attention_and_changes_nothing(random_model):
  model, params = random_model
  tokens = np.asarray([[2, 5, 6, 7, 0, 0, 0, 0],
                       [2, 8, 9, 10, 11, 12, 13, 14]], np.int32)
  weights, gradient = map(np.asarray, attribution.analyse(model, params, tokens))
  assert weights.shape == (2, 2, 2, 8, 8)  # [layers, batch, heads, q, k].
  assert np.all(weights[:, 0, :, :, 4:] == 0)  # Exactly, not approximately.
  alone, gradient_alone = attribution.analyse(model, params, tokens[:1, :4])
  np.testing.assert_allclose(weights[:, 0, :, :4, :4], alone[:, 0], atol=1e-6)
  np.testing.assert_allclose(gradient[0, :4], gradient_alone[0], atol=1e-5)


@pytest.mark.parametrize('ngram_buckets', [0, 97])
def test_gradient_x_input_predicts_the_effect_of_scaling_an_input(
    ngram_buckets):
  """Scaling position i's input by 1 +- eps moves the margin by +-eps * g_i.

  With n-grams on, the input is the token embedding plus the n-grams ending
  at i; scoring the token embedding alone would drop the n-gram path.
  """
  model, params = make_random_model(ngram_buckets=ngram_buckets, ngram_max=3,
                                    ngram_dim=8)
  tokens = np.asarray([[2, 5, 6, 7, 9]], np.int32)
  _, gradient = attribution.analyse(model, params, tokens)
  _, state = model.apply({'params': params}, tokens,
                         mutable=['intermediates'])
  inputs = np.asarray(state['intermediates']['encoder']['word_embeddings'][0])
  if ngram_buckets:
    token_part = np.asarray(params['encoder']['token_embed']['embedding'])
    assert not np.allclose(inputs, token_part[tokens])

  @jax.jit
  def margin(delta):
    logits = model.apply({'params': params}, tokens, delta)
    return logits[0, 1] - logits[0, 0]

  eps = 1e-2
  for i in range(tokens.shape[1]):
    delta = np.zeros_like(inputs)
    delta[0, i] = eps * inputs[0, i]
    change = float(margin(delta) - margin(-delta)) / 2  # Central difference.
    assert change == pytest.approx(eps * float(gradient[0, i]), rel=1e-2,
                                   abs=1e-6)


def test_gradient_x_input_scores_a_piece_as_the_rules_pass_it_on():
  """Scaling a piece's own embedding by 1 +- eps moves the margin by
  +-eps * g_i: a reversed piece is scored as the model reads it (reversed),
  and the negator and the pieces up to "but", which enter as zeros, score 0."""
  # Id 5 is a negator (its window 2), 8 "but", 9 a sentence end; all unique.
  model, params = make_random_model(
      negator_ids=(5,), negation_flip=True, silence_negators=True,
      negation_window=2, contrast_ids=(8,), sentence_end_ids=(9,))
  tokens = np.asarray([[2, 5, 6, 7, 9, 11, 8, 12, 13]], np.int32)
  _, gradient = attribution.analyse(model, params, tokens)
  table = params['encoder']['token_embed']['embedding']

  @jax.jit
  def margin(token, scale):
    encoder = {**params['encoder'], 'token_embed': {
        'embedding': table.at[token].multiply(scale)}}
    logits = model.apply({'params': {**params, 'encoder': encoder}}, tokens)
    return logits[0, 1] - logits[0, 0]

  eps = 1e-2
  for i, token in enumerate(tokens[0]):
    change = float(margin(token, 1 + eps) - margin(token, 1 - eps)) / 2
    assert change == pytest.approx(eps * float(gradient[0, i]), rel=1e-2,
                                   abs=1e-7)
  np.testing.assert_array_equal(gradient[0, [1, 5, 6]], 0)
  assert np.all(gradient[0, [2, 3]] != 0)  # Reversed, not silenced.


def test_the_rules_note_names_each_rule_the_model_applies():
  plain = models.TransformerConfig(vocab_size=10, max_len=8)
  assert page.rules_note(plain) == ''
  note = page.rules_note(plain.replace(
      negator_ids=(5,), negation_flip=True, negation_window=0,
      contrast_ids=(8,)))
  assert 'the rest of the clause after a negator' in note
  assert '"but"' in note and 'negator itself' not in note


def test_bad_selection_and_count_are_input_errors(tmp_path):
  config = models.TransformerConfig(vocab_size=10, max_len=8, num_layers=2,
                                    num_heads=2)
  with pytest.raises(errors.InputError, match='attention_layers=a,1'):
    DumpRequest(tmp_path, layers=['a', '1']).check(config)
  with pytest.raises(errors.InputError, match='head 2 does not exist'):
    DumpRequest(tmp_path, heads=['2']).check(config)
  with pytest.raises(errors.InputError, match='attention_examples=0'):
    DumpRequest(tmp_path, num_examples=0).check(config)
  assert DumpRequest(tmp_path, layers=['1', '0', '1']).check(
      config) == ([1, 0], [0, 1])


# ----------------------------------------------------------------------------
# A tiny model trained on the synthetic CSV of conftest, where 'terrible' is
# one of the words that mark negative reviews.


class _Resources(html.parser.HTMLParser):
  """Every URL a page would load or link to, and whether it has scripts."""

  def __init__(self):
    super().__init__()
    self.urls, self.tags = [], []

  def handle_starttag(self, tag, attrs):
    self.tags.append(tag)
    self.urls += [value for name, value in attrs
                  if name in ('src', 'href', 'action', 'srcset') and value]


def _check_offline_page(path: Path, images: int) -> str:
  """The page loads nothing from elsewhere: every src/href is a data URI or a
  relative path inside the dump; no scripts, frames or style imports."""
  text = path.read_text(encoding='utf-8')
  parser = _Resources()
  parser.feed(text)
  for url in parser.urls:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == 'data':
      continue
    assert not parts.scheme and not parts.netloc, (path, url)
    assert not url.startswith('/'), (path, url)
    assert (path.parent / parts.path).resolve().is_relative_to(
        path.parent.parent.resolve()), (path, url)
  assert not {'script', 'iframe', 'object', 'embed', 'link'} & set(
      parser.tags), path
  assert '@import' not in text and 'url(' not in text, path
  assert sum(url.startswith('data:image/png;base64,')
             for url in parser.urls) == images, path
  return text


def test_offline_check_catches_an_external_resource(tmp_path):
  (tmp_path / 'dump').mkdir()
  bad = tmp_path / 'dump' / 'index.html'
  bad.write_text('<img src="https://example.com/x.png">')
  with pytest.raises(AssertionError):
    _check_offline_page(bad, images=0)


def test_user_text_is_escaped_not_rendered():
  """A review holding markup shows as text: autoescaping, not f-strings."""
  text = '<script>alert(1)</script> <a href="http://x.org">link</a>'
  ex = attribution.Explanation(
      text=text, tokens=['[CLS]', 'a'], weights=np.ones((1, 1, 2, 2)) / 2,
      word_index=np.asarray([-1, 0]), word_spans=[(0, len(text))],
      dropped_spans=[], p_positive=0.5, predicted_label=1,
      p_without_word=np.zeros(1), p_word_masked=np.zeros(1),
      word_scores={'rollout': np.ones(1)}, full_num_tokens=2)
  meta = {'faithfulness': dict.fromkeys(attribution.CORRELATIONS),
          'folder': '000', 'text': text,
          'prediction': 'positive', 'p_positive': 0.5, 'label': None,
          'label_name': None, 'correct': None, 'group': None}
  rendered = page.index_page([meta], {}, {'note': text})
  assert '<script>' not in rendered and 'href="http://x.org"' not in rendered
  assert '&lt;script&gt;' in rendered
  segments = page.highlight(ex, np.ones(1), signed=False)
  assert ''.join(s['text'] for s in segments) == text


def test_predict_dump_writes_every_file_and_handles_long_text(
    trained_run, tmp_path):
  dump = tmp_path / 'dump'
  long_text = ('The acting was terrible, see http://example.com for more. '
               * 12)
  result = check_ok(run_cli(
      '--config=configs/tiny.py', f'--workdir={trained_run}', '--mode=predict',
      '--text=the acting was terrible', f'--text={long_text}',
      f'--attention_dump={dump}', '--attention_heads=1'))

  for folder in ('000', '001'):
    assert all((dump / folder / name).is_file() for name in TEXT_FILES)
    meta = json.loads((dump / folder / 'meta.json').read_text())
    with np.load(dump / folder / 'attention.npz') as arrays:
      weights, tokens = arrays['weights'], list(arrays['tokens'])
    # Every layer and head, real tokens only, rows still distributions.
    assert weights.shape == (meta['model']['num_layers'],
                             meta['model']['num_heads'], len(tokens),
                             len(tokens))
    assert tokens == meta['tokens'] and tokens[0] == '[CLS]'
    assert len(tokens) == meta['truncation']['num_tokens']
    np.testing.assert_allclose(weights.sum(-1), 1, atol=1e-5)
    assert meta['figures']['heads'] == [1]
    assert meta['label'] is None and meta['prediction'] in ('positive',
                                                            'negative')
    assert set(meta['faithfulness']) == set(attribution.CORRELATIONS)
    for name in ('attention', 'rollout', 'gradient_x_input', 'occlusion',
                 'masking'):
      assert len(meta['word_scores'][name]) == len(meta['words'])
    _check_offline_page(dump / folder / 'index.html', images=3)

  short = json.loads((dump / '000' / 'meta.json').read_text())
  assert short['words'] == ['the', 'acting', 'was', 'terrible']
  assert not short['truncation']['truncated']
  long = json.loads((dump / '001' / 'meta.json').read_text())
  assert long['truncation']['truncated']
  assert long['truncation']['num_tokens'] == long['model']['max_len']
  assert long['truncation']['dropped_tokens'] == (
      long['truncation']['full_num_tokens'] - long['model']['max_len'])
  assert 'were dropped' in (dump / '001' / 'index.html').read_text()
  assert re.search(r'attention dump 001: .*were dropped', result.stderr)

  index = _check_offline_page(dump / 'index.html', images=0)
  assert 'href="000/index.html"' in index and 'href="001/index.html"' in index
  summary = json.loads((dump / 'summary.json').read_text())
  assert summary['num_texts'] == 2
  # The tiny run reads by rule; the index says what the rules do.
  rules = summary['model_rules']
  assert rules and rules in html.unescape(index)


def test_eval_dump_writes_the_selected_examples_and_a_summary(
    trained_run, tmp_path):
  workdir = copy_run(trained_run, tmp_path / 'run')  # Eval writes reports.
  dump = tmp_path / 'dump'
  check_ok(run_cli('--config=configs/tiny.py', f'--workdir={workdir}',
                   '--mode=eval', f'--attention_dump={dump}',
                   '--attention_examples=4', '--attention_layers=0'))
  summary = json.loads((dump / 'summary.json').read_text())
  assert summary['num_texts'] == 4 and summary['split'] == 'test'
  assert summary['confident_correct'] + summary['confident_mistakes'] == 4
  for name in attribution.CORRELATIONS:
    stats = summary['faithfulness'][name]
    assert set(stats) == {'mean', 'std', 'median', 'count'}
    assert 0 <= stats['count'] <= 4
  groups = []
  for folder in ('000', '001', '002', '003'):
    assert all((dump / folder / name).is_file() for name in TEXT_FILES)
    meta = json.loads((dump / folder / 'meta.json').read_text())
    assert meta['label'] in (0, 1)
    assert meta['correct'] == (meta['group'] == 'confident_correct')
    groups.append(meta['group'])
  assert groups == sorted(groups)  # Correct ones first, then mistakes.
  index = _check_offline_page(dump / 'index.html', images=0)
  assert 'Faithfulness over these texts' in index and 'Abnar' in index


def test_removing_terrible_raises_p_positive(trained_run):
  predictor = inference.load_predictor(tiny.get_config(), trained_run)
  [ex] = attribution.explain(predictor, ['the acting was terrible'])
  assert ex.words == ['the', 'acting', 'was', 'terrible']
  assert ex.p_positive < 0.5
  terrible = ex.words.index('terrible')
  assert ex.p_without_word[terrible] > ex.p_positive
  assert ex.word_scores['occlusion'][terrible] < 0
  # Deleting the word's ids equals re-tokenising the text without it.
  retokenised = metrics.p_positive(
      predictor.logits(predictor.encode(['the acting was'])))[0]
  assert ex.p_without_word[terrible] == pytest.approx(retokenised, abs=1e-5)
  # Masking agrees in direction; for the last word nothing shifts position,
  # so masking it is the same as deleting it.
  assert ex.word_scores['masking'][terrible] < 0
  assert ex.p_word_masked[terrible] == pytest.approx(
      ex.p_without_word[terrible], abs=1e-5)


@pytest.mark.parametrize('flag, message', [
    ('--attention_layers=7', 'error: --attention_layers: layer 7 does not '
     'exist'),
    ('--attention_dump={file}/dump', 'error: --attention_dump='),
])
def test_bad_dump_flags_exit_with_one_line(trained_run, tmp_path, flag,
                                           message):
  not_a_dir = tmp_path / 'file'
  not_a_dir.write_text('')
  args = ['--config=configs/tiny.py', f'--workdir={trained_run}',
          '--mode=predict', '--text=fine', f'--attention_dump={tmp_path}/ok']
  result = run_cli(*args, flag.format(file=not_a_dir))
  assert result.returncode != 0
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(message), result.stderr[-2000:]
  assert 'Traceback' not in result.stderr
  assert result.stdout == ''  # Rejected before predicting anything.
