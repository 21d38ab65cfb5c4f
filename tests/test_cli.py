"""The command line end to end: train, eval, predict, kill-and-resume, bad input.

Every test runs `python -m sentiment_jax.main` in a subprocess on the tiny
config and a learnable synthetic CSV (see helpers.py).
"""

import concurrent.futures
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

import sentiment_jax

from helpers import (assert_same_final_state, check_ok, cli_env, copy_run,
                      kill_once_checkpointed, latest_step_dirs,
                      read_jsonl, run_cli, sentiment_rows, train_args,
                      write_csv)

# Over ~20 s of fixtures or CLI runs: left out of `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

ARTEFACTS = ('config.json', 'tokenizer.json', 'metrics.jsonl', 'curves.png',
             'eval_test.json', 'errors_test.jsonl', 'roc_test.png',
             'confusion_test.png')


def without_throughput(records: list[dict]) -> list[dict]:
  """Metrics records minus the wall-clock ones, which differ run to run."""
  return [{k: v for k, v in r.items() if not k.endswith('_per_s')}
          for r in records]


def corrupt_checkpoint(step_dir) -> None:
  """Overwrites every file of a checkpoint's saved state with junk."""
  for root, _, files in os.walk(step_dir / 'state'):
    for name in files:
      with open(os.path.join(root, name), 'w') as f:
        f.write('not a checkpoint')


# ----------------------------------------------------------------------------
# Train, eval, predict.


def expected_schedule(workdir) -> tuple[list[int], list[int]]:
  """(validation steps, kept 'latest' steps) the run's config implies."""
  config = json.loads((workdir / 'config.json').read_text())
  t = config['train']
  steps_per_epoch = 320 // config['data']['batch_size']  # 320 train rows.
  total = t['num_epochs'] * steps_per_epoch
  eval_every = t['eval_every_steps'] or steps_per_epoch
  evals = [s for s in range(1, total + 1) if s % eval_every == 0 or s == total]
  saves = sorted(set(evals) | set(range(t['checkpoint_every_steps'], total + 1,
                                        t['checkpoint_every_steps'])))
  return evals, saves[-t['keep_checkpoints']:]


def test_training_writes_a_self_describing_workdir(trained_run):
  for name in ARTEFACTS:
    assert (trained_run / name).is_file(), name
  assert any((trained_run / 'tensorboard').iterdir())
  config = json.loads((trained_run / 'config.json').read_text())
  assert config['data']['source'].startswith('csv:')
  assert config['data']['train_fraction'] == 1.0
  evals, kept = expected_schedule(trained_run)
  assert [int(p.name) for p in latest_step_dirs(trained_run)] == kept
  assert len(latest_step_dirs(trained_run, 'best')) == 1
  records = read_jsonl(trained_run / 'metrics.jsonl')
  assert [r['step'] for r in records if 'val/accuracy' in r] == evals
  train_steps = [r['step'] for r in records if 'train/loss' in r]
  assert train_steps == sorted(set(train_steps))
  assert train_steps[-1] == evals[-1]
  assert all(np.isfinite(v) for r in records for v in r.values()
             if isinstance(v, float))


def test_training_learns_the_synthetic_task(trained_run):
  records = read_jsonl(trained_run / 'metrics.jsonl')
  assert max(r['val/accuracy'] for r in records if 'val/accuracy' in r) >= 0.8
  report = json.loads((trained_run / 'eval_test.json').read_text())
  assert report['metrics']['accuracy'] >= 0.8  # Chance is 0.5.


@pytest.fixture(scope='module')
def eval_result(trained_run):
  return check_ok(run_cli('--config=configs/tiny.py',
                          f'--workdir={trained_run}', '--mode=eval',
                          '--config.eval.baseline=True'))


def test_eval_writes_metrics_errors_and_plots(trained_run, eval_result):
  report = json.loads((trained_run / 'eval_test.json').read_text())
  metrics = report['metrics']
  for key in ('accuracy', 'precision', 'recall', 'f1', 'auc_roc', 'log_loss'):
    assert 0 <= metrics[key] <= (1 if key != 'log_loss' else 10), key
  assert metrics['num_examples'] == 40
  assert metrics['accuracy'] >= 0.8 and metrics['auc_roc'] >= 0.85
  confusion = np.array(metrics['confusion_matrix'])
  assert confusion.shape == (2, 2) and confusion.sum() == 40
  assert np.trace(confusion) / 40 == pytest.approx(metrics['accuracy'])
  assert report['split'] == 'test'
  assert report['checkpoint_step'] in expected_schedule(trained_run)[0]
  # Each listed error really is a mistake, most confident first.
  errors = read_jsonl(trained_run / 'errors_test.jsonl')
  num_errors = json.loads(
      (trained_run / 'config.json').read_text())['eval']['num_errors']
  assert len(errors) == min(num_errors, confusion.sum() - np.trace(confusion))
  assert all((e['p_positive'] >= 0.5) != e['label'] for e in errors)
  confidence = [abs(e['p_positive'] - 0.5) for e in errors]
  assert confidence == sorted(confidence, reverse=True)
  for name in ('roc_test.png', 'confusion_test.png'):
    assert (trained_run / name).read_bytes()[:4] == b'\x89PNG'
  assert 'accuracy' in eval_result.stdout
  # McNemar's discordant counts are the whole accuracy difference.
  mcnemar = report['baseline']['mcnemar']
  assert (mcnemar['a_only_correct'] - mcnemar['b_only_correct']) / 40 == (
      pytest.approx(metrics['accuracy'] - report['baseline']['accuracy']))
  assert 0 < mcnemar['p_value'] <= 1 and 'McNemar' in eval_result.stdout


def test_eval_runs_on_the_validation_split(trained_run):
  check_ok(run_cli('--config=configs/tiny.py', f'--workdir={trained_run}',
                   '--mode=eval', '--eval_split=validation'))
  report = json.loads((trained_run / 'eval_validation.json').read_text())
  assert report['split'] == 'validation'
  assert report['metrics']['num_examples'] == 40
  assert (trained_run / 'errors_validation.jsonl').is_file()


PREDICT_KEYS = {'text', 'label', 'p_positive', 'p_positive_raw', 'abstain',
                'num_tokens', 'truncated_tokens'}


def test_predict_texts_and_plain_file_to_output_file(trained_run, tmp_path):
  long_text = ' '.join(['the plot was wonderful and superb'] * 20)
  input_file = tmp_path / 'reviews.txt'
  input_file.write_text(f'a dull and dreadful film\n\n{long_text}\n')
  output_file = tmp_path / 'out' / 'predictions.jsonl'
  output_file.parent.mkdir()
  result = check_ok(run_cli(
      '--config=configs/tiny.py', f'--workdir={trained_run}', '--mode=predict',
      '--text=a wonderful, brilliant and superb movie',
      '--text=terrible, awful and boring acting',
      f'--input_file={input_file}', f'--output_file={output_file}'))
  rows = [json.loads(line) for line in result.stdout.splitlines()]
  assert read_jsonl(output_file) == rows
  assert [r['text'] for r in rows] == [
      'a wonderful, brilliant and superb movie',
      'terrible, awful and boring acting', 'a dull and dreadful film',
      long_text]
  assert [r['label'] for r in rows] == ['positive', 'negative', 'negative',
                                        'positive']
  for row in rows:
    assert set(row) == PREDICT_KEYS
    assert (row['p_positive'] >= 0.5) == (row['label'] == 'positive')
    # No temperature fitted yet: raw probabilities, no abstention, and a note.
    assert row['p_positive'] == row['p_positive_raw']
    assert row['abstain'] is None
  assert 'no fitted temperature' in result.stderr
  max_len = json.loads(
      (trained_run / 'config.json').read_text())['data']['max_len']
  assert all(r['truncated_tokens'] == 0 for r in rows[:3])
  assert 0 < rows[0]['num_tokens'] < max_len
  # The long text (~140 tokens) is cut to max_len, [CLS] included.
  assert rows[3]['num_tokens'] == max_len and rows[3]['truncated_tokens'] > 0


def predict_with_user_cache(workdir, cache_home, **extra: str):
  """One prediction with the cache a user gets: `$XDG_CACHE_HOME` at
  `cache_home`, not the suite's cache that `cli_env` sets."""
  env = cli_env(XDG_CACHE_HOME=str(cache_home), **extra)
  del env['JAX_COMPILATION_CACHE_DIR']
  return check_ok(run_cli('--config=configs/tiny.py', f'--workdir={workdir}',
                          '--mode=predict', '--text=a wonderful film',
                          env=env))


def test_compiled_programs_persist_in_the_user_cache(trained_run, tmp_path):
  predict_with_user_cache(trained_run, tmp_path)
  cache = tmp_path / 'sentiment_jax' / 'xla'
  assert any(p.name.startswith('jit_eval_step') for p in cache.iterdir())
  # The next run loads the eval step instead of compiling it.
  again = predict_with_user_cache(trained_run, tmp_path,
                                  JAX_DEBUG_LOG_MODULES='jax._src.compiler')
  assert re.search(r"cache hit for 'jit_eval_step'", again.stderr)


def test_an_unusable_cache_directory_only_costs_the_cache(trained_run,
                                                           tmp_path):
  blocker = tmp_path / 'a_file'
  blocker.write_text('not a directory')
  result = predict_with_user_cache(trained_run, blocker)
  assert 'note: compiled programs are not cached' in result.stderr
  assert 'Warning' not in result.stderr and len(result.stdout.splitlines()) == 1


def test_predict_jsonl_input_file(trained_run, tmp_path):
  input_file = tmp_path / 'reviews.jsonl'
  texts = ['superb, lovely and charming', 'boring <br />and tedious']
  input_file.write_text(''.join(
      json.dumps({'id': i, 'text': t}) + '\n' for i, t in enumerate(texts)))
  result = check_ok(run_cli(
      '--config=configs/tiny.py', f'--workdir={trained_run}', '--mode=predict',
      f'--input_file={input_file}'))
  rows = [json.loads(line) for line in result.stdout.splitlines()]
  # Texts are cleaned as in training.
  assert [r['text'] for r in rows] == ['superb, lovely and charming',
                                       'boring and tedious']
  assert [r['label'] for r in rows] == ['positive', 'negative']


# ----------------------------------------------------------------------------
# Resuming.


@pytest.fixture(scope='module')
def killed_and_resumed_run(tmp_path_factory, sentiment_csv, trained_run):
  """Run B: SIGKILLed once a checkpoint exists, then run again to the end.
  It trains its own tokenizer, as run A did."""
  workdir = tmp_path_factory.mktemp('killed') / 'run'
  args = train_args(workdir, sentiment_csv)
  killed_at = kill_once_checkpointed(args, workdir)
  return workdir, killed_at, check_ok(run_cli(*args))


def test_killed_run_resumes_from_its_checkpoint(killed_and_resumed_run):
  _, killed_at, resumed = killed_and_resumed_run
  assert killed_at, 'no checkpoint before the kill'
  match = re.search(r'resumed from step (\d+)', resumed.stdout)
  assert match, resumed.stdout[-2000:]
  assert int(match.group(1)) >= int(killed_at[-1]) > 0


def test_killed_and_resumed_run_is_bit_identical(killed_and_resumed_run,
                                                 trained_run):
  workdir, _, _ = killed_and_resumed_run
  assert_same_final_state(workdir, trained_run)
  assert ([p.name for p in latest_step_dirs(workdir, 'best')] ==
          [p.name for p in latest_step_dirs(trained_run, 'best')])
  assert (without_throughput(read_jsonl(workdir / 'metrics.jsonl')) ==
          without_throughput(read_jsonl(trained_run / 'metrics.jsonl')))
  ours = json.loads((workdir / 'eval_test.json').read_text())
  theirs = json.loads((trained_run / 'eval_test.json').read_text())
  assert ours['metrics'] == theirs['metrics']


@pytest.fixture(scope='module')
def recovered_run(tmp_path_factory, trained_run, sentiment_csv):
  """A finished run whose newest checkpoint is corrupted, then trained again."""
  workdir = copy_run(trained_run, tmp_path_factory.mktemp('corrupt') / 'run')
  corrupt_checkpoint(latest_step_dirs(workdir)[-1])
  return workdir, run_cli(*train_args(workdir, sentiment_csv))


def test_corrupt_latest_checkpoint_falls_back_to_the_previous(recovered_run,
                                                             trained_run):
  workdir, result = recovered_run
  check_ok(result)
  previous, corrupted = latest_step_dirs(trained_run)[-2:]
  assert re.search(rf'checkpoint {corrupted.name} .* unreadable', result.stderr)
  assert f'resumed from step {previous.name}' in result.stdout
  assert (without_throughput(read_jsonl(workdir / 'metrics.jsonl')) ==
          without_throughput(read_jsonl(trained_run / 'metrics.jsonl')))


def test_recovery_replaces_the_corrupt_checkpoint(recovered_run, trained_run):
  # Otherwise the corrupt step is never rewritten (`save` skips steps it
  # already lists) and every later resume falls back and retrains again.
  workdir, result = recovered_run
  check_ok(result)
  assert_same_final_state(workdir, trained_run)


def test_resuming_a_finished_run_changes_nothing(tmp_path, trained_run,
                                                 sentiment_csv):
  workdir = copy_run(trained_run, tmp_path / 'run')
  metrics_before = (workdir / 'metrics.jsonl').read_bytes()
  checkpoints_before = sorted(
      str(p.relative_to(workdir)) for p in (workdir / 'checkpoints').rglob('*'))
  result = check_ok(run_cli(*train_args(workdir, sentiment_csv)))
  final_step = latest_step_dirs(trained_run)[-1].name
  assert f'resumed from step {final_step}' in result.stdout
  assert (workdir / 'metrics.jsonl').read_bytes() == metrics_before
  assert sorted(str(p.relative_to(workdir))
                for p in (workdir / 'checkpoints').rglob('*')) == (
                    checkpoints_before)
  assert_same_final_state(workdir, trained_run)
  ours = json.loads((workdir / 'eval_test.json').read_text())
  theirs = json.loads((trained_run / 'eval_test.json').read_text())
  assert ours['metrics'] == theirs['metrics']


def test_resume_tolerates_a_torn_last_metrics_line(tmp_path, trained_run,
                                                   sentiment_csv):
  """A kill mid-append leaves half a JSON line; resuming drops it."""
  workdir = copy_run(trained_run, tmp_path / 'run')
  metrics_before = (workdir / 'metrics.jsonl').read_text()
  with open(workdir / 'metrics.jsonl', 'a') as f:
    f.write('{"step": 61, "train/lo')
  check_ok(run_cli(*train_args(workdir, sentiment_csv)))
  assert (workdir / 'metrics.jsonl').read_text() == metrics_before


def test_changed_data_is_refused_by_the_checkpoint_record(tmp_path,
                                                          trained_run):
  """Same config, more rows behind the same path: steps_per_epoch changes,
  which the checkpoint's trajectory record catches."""
  workdir = copy_run(trained_run, tmp_path / 'run')
  bigger = write_csv(tmp_path / 'data.csv', sentiment_rows(600))
  config = json.loads((workdir / 'config.json').read_text())
  config['data']['source'] = f'csv:{bigger}'
  (workdir / 'config.json').write_text(json.dumps(config))
  result = run_cli(*train_args(workdir, bigger))
  assert result.returncode != 0
  last = message_lines(result.stderr)[-1]
  assert last.startswith('error: ') and 'steps_per_epoch=20' in last, last
  assert 'new --workdir' in last


# ----------------------------------------------------------------------------
# Bad input: one clear line on stderr, a non-zero exit, no partial artefacts.

ABSL_FLAG_HINT = 'Pass --helpshort or --helpfull to see help on flags.'


def message_lines(stderr: str) -> list[str]:
  """stderr minus the device banner and absl log records such as warnings."""
  return [line for line in stderr.splitlines()
          if line.strip() and not line.startswith('JAX ')
          and not re.match(r'[IWEF]\d{4} ', line)]


def bad_input_cases(tmp, trained_run, data_csv) -> dict:
  """name -> (CLI args, text the message must contain, path that must not
  exist afterwards or None). Pure: `make_bad_input_files` writes the files.
  Cases run concurrently, so none share a path."""
  tiny = '--config=configs/tiny.py'

  def fresh(name):
    return tmp / f'{name}_workdir'

  def train(name, *extra):
    return train_args(fresh(name), data_csv, *extra)

  return {
      'missing_config': (
          ['--config=configs/no_such_config.py',
           f'--workdir={fresh("missing_config")}'],
          'no_such_config.py', fresh('missing_config')),
      'config_not_python': (
          [f'--config={tmp / "not_python.py"}',
           f'--workdir={fresh("config_not_python")}'],
          'not_python.py', fresh('config_not_python')),
      'unknown_override': (
          train('unknown_override', '--config.model.nonexistent=1'),
          'nonexistent', fresh('unknown_override')),
      'ill_typed_override': (
          train('ill_typed_override', '--config.model.num_layers=abc'),
          'num_layers', fresh('ill_typed_override')),
      'out_of_range_override': (
          train('out_of_range_override', '--config.model.num_heads=3'),
          'num_heads', fresh('out_of_range_override')),
      'generated_fraction_out_of_range': (
          train('generated_fraction',
                '--config.data.generated_counterfactuals=2'),
          'generated_counterfactuals=2', fresh('generated_fraction')),
      'unknown_generated_edit': (
          train('generated_edit', '--config.data.generated_edit=shuffle'),
          'generated_edit', fresh('generated_edit')),
      'pair_weight_without_pairs': (
          train('pair_weight', '--config.train.pair_weight=0.5'),
          'needs pairs', fresh('pair_weight')),
      'counterfactual_weight_without_pairs': (
          train('cf_weight', '--config.train.counterfactual_weight=2'),
          'counterfactual_weight=2.0 needs pairs', fresh('cf_weight')),
      'nonpositive_counterfactual_weight': (
          train('cf_weight_zero', '--config.train.counterfactual_weight=0'),
          'counterfactual_weight=0.0 must be > 0', fresh('cf_weight_zero')),
      'negative_negation_window': (
          train('negation_window', '--config.model.negation_window=-1'),
          'negation_window=-1 must be >= 0', fresh('negation_window')),
      'silenced_negators_without_flip': (
          train('silence_negators', '--config.model.negation_flip=False',
                '--config.model.silence_negators=True'),
          'needs model.negation_flip=True', fresh('silence_negators')),
      'skipped_ngrams_without_ngrams': (
          train('skip_negated', '--config.model.ngram_buckets=0',
                '--config.model.ngram_skip_negated=True'),
          'ngram_skip_negated=True needs n-grams', fresh('skip_negated')),
      'unknown_generated_unit': (
          train('generated_unit', '--config.data.generated_unit=word'),
          'generated_unit', fresh('generated_unit')),
      'mode_typo': (train('mode_typo', '--mode=trian'), 'mode',
                    fresh('mode_typo')),
      'override_typo': (
          train('override_typo', '--config.model.num_layer=2'),
          'no field \'num_layer\'. Did you mean "num_layers"',
          fresh('override_typo')),
      'train_without_config': (
          [f'--workdir={fresh("no_config")}'], '--config is required',
          fresh('no_config')),
      'eval_without_config_or_workdir': (
          ['--mode=eval'], '--config is required', None),
      'predict_workdir_is_a_file': (
          [f'--workdir={tmp / "a_file"}', '--mode=predict', '--text=good'],
          'a_file is a file, not a directory', None),
      'eval_missing_workdir': (
          [tiny, f'--workdir={fresh("eval_missing")}', '--mode=eval'],
          'eval_missing_workdir', fresh('eval_missing')),
      'eval_empty_workdir': (
          [tiny, f'--workdir={tmp / "empty_workdir"}', '--mode=eval'],
          'empty_workdir', None),
      'eval_unknown_split': (
          [tiny, f'--workdir={trained_run}', '--mode=eval',
           '--eval_split=rotten_tomatoes'], 'rotten_tomatoes', None),
      'eval_unreadable_checkpoints': (
          [tiny, f'--workdir={tmp / "unreadable"}', '--mode=eval'],
          'checkpoint', None),
      'predict_empty_text': (
          [tiny, f'--workdir={trained_run}', '--mode=predict', '--text='],
          'empty', None),
      'predict_target_out_of_range': (
          [tiny, f'--workdir={trained_run}', '--mode=predict', '--text=good',
           '--target_accuracy=1.5'], '--target_accuracy=1.5', None),
      'predict_nothing': (
          [tiny, f'--workdir={trained_run}', '--mode=predict'], '--text',
          None),
      'predict_non_utf8_file': (
          [tiny, f'--workdir={trained_run}', '--mode=predict',
           f'--input_file={tmp / "latin1.txt"}'], 'latin1.txt:1', None),
      'predict_missing_file': (
          [tiny, f'--workdir={trained_run}', '--mode=predict',
           f'--input_file={tmp / "no_such.txt"}'], 'no_such.txt', None),
      'csv_bad_label': (
          train_args(tmp / 'bad_label_run', tmp / 'labels.csv'),
          'labels.csv:32:', None),
      'workdir_under_a_file': (
          train_args(tmp / 'a_file' / 'run', data_csv), 'a_file', None),
      'incompatible_workdir': (
          train_args(trained_run, data_csv, '--config.model.num_layers=2'),
          'num_layers', None),
      'resume_with_another_batch_size': (
          train_args(trained_run, data_csv, '--config.data.batch_size=32'),
          'data.batch_size=16 but this config has 32', None),
      'resume_with_another_learning_rate': (
          train_args(trained_run, data_csv, '--config.train.learning_rate=0.1'),
          'train.learning_rate', None),
      'corrupt_tokenizer_path': (
          train('corrupt_tokenizer',
                f'--config.data.tokenizer_path={tmp / "broken.json"}'),
          'broken.json', fresh('corrupt_tokenizer')),
      'init_from_missing_workdir': (
          train('init_from_missing',
                f'--config.train.init_from={tmp / "no_such_pretraining"}'),
          'no_such_pretraining', fresh('init_from_missing')),
      'init_from_untrained_workdir': (  # A classifier run: no encoder saved.
          train('init_from_untrained', f'--config.train.init_from={trained_run}'),
          'no pretrained encoder', fresh('init_from_untrained')),
      'pretrain_mask_rate_out_of_range': (
          train('mask_rate', '--mode=pretrain', '--config.pretrain.mask_rate=1.5'),
          'pretrain.mask_rate', fresh('mask_rate')),
      'partial_multi_process_flags': (
          train('partial_multi_process', '--num_processes=2'),
          '--coordinator_address', fresh('partial_multi_process')),
  }


def make_bad_input_files(tmp, trained_run) -> None:
  """The files the bad-input cases point at."""
  (tmp / 'not_python.py').write_text('def get_config(:\n')
  (tmp / 'broken.json').write_text('{"model": ')
  write_csv(tmp / 'labels.csv', sentiment_rows(30) + [('fine film', 2)])
  (tmp / 'latin1.txt').write_bytes('caf\xe9 was great\n'.encode('latin-1'))
  (tmp / 'empty_workdir').mkdir()
  (tmp / 'a_file').write_text('')
  no_best = copy_run(trained_run, tmp / 'unreadable')
  for step_dir in latest_step_dirs(no_best, 'best'):
    corrupt_checkpoint(step_dir)


BAD_INPUT_NAMES = sorted(bad_input_cases(Path(), Path(), Path()))


@pytest.fixture(scope='module')
def bad_input_results(tmp_path_factory, trained_run, sentiment_csv):
  """Runs every case once, a few at a time: each is mostly start-up."""
  tmp = tmp_path_factory.mktemp('bad_input')
  make_bad_input_files(tmp, trained_run)
  cases = bad_input_cases(tmp, trained_run, sentiment_csv)
  run_files = {name: (trained_run / name).read_bytes()
               for name in ('config.json', 'metrics.jsonl')}
  with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
    futures = {name: pool.submit(run_cli, *args)
               for name, (args, _, _) in cases.items()}
    results = {name: future.result() for name, future in futures.items()}
  # Refused resumes leave the run as it was.
  for name, content in run_files.items():
    assert (trained_run / name).read_bytes() == content, name
  return cases, results


@pytest.mark.parametrize('name', BAD_INPUT_NAMES)
def test_bad_input_fails_with_one_clear_line(bad_input_results, name):
  cases, results = bad_input_results
  _, expected, must_not_exist = cases[name]
  result = results[name]
  assert result.returncode != 0
  assert 'Traceback' not in result.stderr, result.stderr[-3000:]
  lines = message_lines(result.stderr)
  assert lines, result.stderr[-3000:]
  if lines[0].startswith('FATAL Flags parsing error:'):
    # absl's own format for a flag it cannot parse, with its help hint.
    assert lines[1:] in ([], [ABSL_FLAG_HINT]), lines
  else:
    assert len(lines) == 1 and lines[0].startswith('error: '), lines
  assert expected in lines[0], lines[0]
  if must_not_exist is not None:
    assert not must_not_exist.exists(), f'{must_not_exist} was created'



def test_a_scoped_run_trains_saves_its_vector_and_gains_and_predicts(
    tmp_path):
  rows = sentiment_rows(400)
  # "X, but Y. Not X." with Y's label: both scopes occur.
  data = write_csv(tmp_path / 'scopes.csv', [
      (f'{x}, but {y}. not {x}.', label)
      for (x, _), (y, label) in zip(rows, rows[1:])])
  workdir = tmp_path / 'run'
  check_ok(run_cli(*train_args(workdir, data,
                               '--config.model.negation_scope=True',
                               '--config.model.negation_flip=True',
                               '--config.model.contrast_scope=True',
                               '--config.train.num_epochs=1')))
  result = check_ok(run_cli(f'--workdir={workdir}', '--mode=predict',
                            '--text=the film was not dull at all'))
  assert json.loads(result.stdout)['label'] in ('positive', 'negative')
  predictor = sentiment_jax.load(workdir)
  config = predictor.model.config  # Read back from config.json.
  assert config.negator_ids and config.contrast_ids
  encoder = predictor.params['encoder']
  assert np.abs(np.asarray(encoder['negation_embed'])).max() > 0
  # Trained, so moved from their starts (-1 and 0).
  assert np.abs(np.asarray(encoder['negation_gain']) + 1).max() > 0
  assert np.abs(np.asarray(encoder['contrast_gain'])).max() > 0
