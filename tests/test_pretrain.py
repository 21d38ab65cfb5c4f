"""Self-pretraining: the masking, the corpus, kill-and-resume, and a fine-tune
that starts from exactly the pretrained encoder."""

import json
import shutil

import jax
import numpy as np
import pytest

from configs import tiny
from sentiment_jax import input_pipeline, mlm, models, steps, train
from sentiment_jax.input_pipeline import Split

from helpers import (assert_same_final_state, check_ok,
                     kill_once_checkpointed, latest_step_dirs, read_jsonl,
                     restore_raw, run_cli, train_args)

# Over ~20 s of fixtures or CLI runs: left out of `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

VOCAB = 100  # Ids 0-2 special, 99 = [MASK].
FIRST_PIECE = len(input_pipeline.SPECIAL_TOKENS)


def token_batch(seed: int, batch: int = 64, seq: int = 96) -> np.ndarray:
  """[CLS] + ordinary pieces with some [UNK]s, right-padded to varied lengths."""
  rng = np.random.default_rng(seed)
  tokens = rng.integers(FIRST_PIECE, VOCAB - 1, (batch, seq)).astype(np.int32)
  tokens[:, 0] = 2  # [CLS]
  tokens[rng.random((batch, seq)) < 0.05] = 1  # [UNK]
  for row, length in zip(tokens, rng.integers(2, seq + 1, batch)):
    row[length:] = models.PAD_ID
  return tokens


@pytest.mark.parametrize('rate', [0.15, 0.3])
def test_masking_follows_the_rate_and_spares_padding_and_special_tokens(rate):
  tokens = token_batch(0)
  out = mlm.mask_batch(tokens, np.random.default_rng(1), mask_rate=rate,
                       vocab_size=VOCAB)
  used = out['weights'] > 0
  chosen = np.take_along_axis(tokens, out['positions'], axis=1)[used]
  assert (chosen >= FIRST_PIECE).all() and (chosen != VOCAB - 1).all()
  np.testing.assert_array_equal(out['targets'][used], chosen)
  ordinary = (tokens >= FIRST_PIECE).sum()
  assert used.sum() / ordinary == pytest.approx(rate, abs=0.01)
  # Only chosen positions change; padding and special tokens never do.
  changed = out['tokens'] != tokens
  is_chosen = np.zeros_like(changed)
  np.put_along_axis(is_chosen, out['positions'], used, axis=1)
  assert not (changed & ~is_chosen).any()
  replaced = out['tokens'][is_chosen]
  assert (replaced == VOCAB - 1).mean() == pytest.approx(0.8, abs=0.05)
  # 10% random plus 10% kept, a few random draws landing on the same id.
  assert (replaced == tokens[is_chosen]).mean() == pytest.approx(0.1, abs=0.04)


def test_masked_token_loss_counts_only_used_slots():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(2, 4, VOCAB)).astype(np.float32)
  batch = {'targets': rng.integers(0, VOCAB, (2, 4)).astype(np.int32),
           'weights': np.array([[1, 1, 0, 0], [1, 0, 0, 0]], np.float32)}
  loss, accuracy = steps.masked_token_loss(logits, batch)
  other = dict(batch, targets=batch['targets'].copy())
  other['targets'][:, 2:] = (other['targets'][:, 2:] + 1) % VOCAB
  other['targets'][1, 1] = 0
  assert steps.masked_token_loss(logits, other)[0] == loss
  by_hand = -np.mean([jax.nn.log_softmax(logits[r, c])[batch['targets'][r, c]]
                      for r, c in ((0, 0), (0, 1), (1, 0))])
  assert float(loss) == pytest.approx(by_hand, rel=1e-5)
  assert 0 <= accuracy <= 1


def test_the_corpus_never_holds_validation_or_test_texts():
  splits = {
      'train': Split(['a', 'b', 'leaked test', 'c', 'leaked val'],
                     np.zeros(5, np.int32)),
      'validation': Split(['leaked val', 'v'], np.zeros(2, np.int32)),
      'test': Split(['leaked test', 't'], np.zeros(2, np.int32)),
      'rotten_tomatoes': Split(['r1', 'r2'], np.zeros(2, np.int32)),
  }
  texts, held_out = mlm.corpus(splits, held_out=2)
  assert sorted(texts + held_out) == ['a', 'b', 'c', 'r1', 'r2']
  assert len(held_out) == 2 and not set(held_out) & set(texts)
  assert mlm.corpus(splits, held_out=2) == (texts, held_out)


# ----------------------------------------------------------------------------
# End to end on the tiny config and the synthetic CSV.


def pretrain_args(workdir, data_csv, *extra):
  return train_args(workdir, data_csv, '--mode=pretrain',
                    '--config.pretrain.num_epochs=2',
                    '--config.pretrain.batch_size=16',
                    '--config.pretrain.held_out_texts=40', *extra)


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory, sentiment_csv):
  workdir = tmp_path_factory.mktemp('pretrain') / 'run'
  check_ok(run_cli(*pretrain_args(workdir, sentiment_csv)))
  return workdir


def test_pretraining_learns_and_saves_an_encoder(pretrained):
  records = read_jsonl(pretrained / 'pretrain_metrics.jsonl')
  held_out = [r['held_out/loss'] for r in records if 'held_out/loss' in r]
  assert len(held_out) == 2 and held_out[1] < held_out[0]
  summary = json.loads((pretrained / 'pretrain_summary.json').read_text())
  assert summary['held_out_texts'] == 40
  assert summary['corpus_texts'] == 320 - 40
  assert [p.name for p in latest_step_dirs(pretrained, 'encoder')] == [
      str(summary['step'])]


def test_killed_pretraining_resumes_bit_identical(tmp_path, pretrained,
                                                  sentiment_csv):
  workdir = tmp_path / 'run'
  workdir.mkdir()
  # Same tokenizer: the trainer breaks ties in hash order on tiny corpora.
  shutil.copy(pretrained / 'tokenizer.json', workdir)
  args = pretrain_args(workdir, sentiment_csv)
  assert kill_once_checkpointed(args, workdir, 'pretrain')
  result = check_ok(run_cli(*args))
  assert 'resumed from step' in result.stdout
  for kind in ('pretrain', 'encoder'):
    assert_same_final_state(workdir, pretrained, kind)
  strip = lambda rs: [{k: v for k, v in r.items() if not k.endswith('_per_s')}
                      for r in rs]
  assert (strip(read_jsonl(workdir / 'pretrain_metrics.jsonl')) ==
          strip(read_jsonl(pretrained / 'pretrain_metrics.jsonl')))


def fine_tune_start(pretrained):
  """(tiny config, classifier, step-0 state) of a fine-tune from `pretrained`,
  after checking that its encoder equals the saved one exactly."""
  config = tiny.get_config()
  config.train.init_from = str(pretrained)
  tokenizer = input_pipeline.load_tokenizer(pretrained / 'tokenizer.json')
  model = models.Classifier(models.TransformerConfig.from_run_config(
      config, tokenizer.get_vocab_size(),
      input_pipeline.negation_ids(tokenizer)))
  state = train.initial_state(config, model, total_steps=10)
  saved = restore_raw(latest_step_dirs(pretrained, 'encoder')[-1])
  leaves = jax.tree_util.tree_leaves_with_path(state.params['encoder'])
  assert len(leaves) == len(jax.tree_util.tree_leaves(saved))
  for (path, ours), theirs in zip(leaves, jax.tree_util.tree_leaves(saved)):
    np.testing.assert_array_equal(ours, theirs, jax.tree_util.keystr(path))
  return config, model, state


def test_fine_tuning_starts_from_exactly_the_pretrained_encoder(pretrained):
  config, model, state = fine_tune_start(pretrained)
  config.train.init_from = ''
  fresh = train.initial_state(config, model, total_steps=10)
  np.testing.assert_array_equal(state.params['head']['kernel'],
                                fresh.params['head']['kernel'])
  assert not np.array_equal(state.params['encoder']['final_norm']['scale'],
                            fresh.params['encoder']['final_norm']['scale'])


def test_electra_pretraining_learns_and_its_encoder_loads(tmp_path,
                                                          sentiment_csv):
  workdir = tmp_path / 'electra'
  check_ok(run_cli(*pretrain_args(workdir, sentiment_csv,
                                  '--config.pretrain.objective=electra',
                                  '--config.pretrain.generator_embed_dim=16')))
  records = read_jsonl(workdir / 'pretrain_metrics.jsonl')
  detector = [r['held_out/detector_loss'] for r in records
              if 'held_out/detector_loss' in r]
  assert len(detector) == 2 and detector[1] < detector[0]
  assert all(0 <= r['pretrain/generator_accuracy'] <= 1 for r in records
             if 'pretrain/generator_accuracy' in r)
  fine_tune_start(workdir)


def test_fine_tuning_from_pretraining_trains_and_evaluates(tmp_path, pretrained,
                                                           sentiment_csv):
  workdir = tmp_path / 'fine_tuned'
  check_ok(run_cli(*train_args(workdir, sentiment_csv,
                               f'--config.train.init_from={pretrained}')))
  assert ((workdir / 'tokenizer.json').read_bytes() ==
          (pretrained / 'tokenizer.json').read_bytes())
  metrics = json.loads((workdir / 'eval_test.json').read_text())['metrics']
  assert metrics['accuracy'] > 0.8


def test_an_incompatible_pretraining_is_refused_in_one_line(tmp_path,
                                                            pretrained,
                                                            sentiment_csv):
  workdir = tmp_path / 'wider'
  result = run_cli(*train_args(workdir, sentiment_csv,
                               f'--config.train.init_from={pretrained}',
                               '--config.model.embed_dim=64'))
  assert result.returncode != 0 and 'Traceback' not in result.stderr
  assert ('pretrained with model.embed_dim=32 but this config has 64'
          in result.stderr)
  assert not workdir.exists()
