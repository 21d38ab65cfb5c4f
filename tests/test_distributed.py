"""Two real processes on JAX's distributed runtime train like one process with two devices.

Each process has one CPU device and exchanges collectives over gloo on a
free localhost port. The reference is one process with two forced host
devices. Both start from the same tokenizer.json: on this tiny templated
corpus the tokenizer trainer breaks ties in hash order.
"""

import json
import shutil
import socket
import subprocess
import sys

import pytest

from helpers import (REPO, assert_params_close, check_ok, cli_env,
                     latest_step_dirs, restore_raw, run_cli)

# Over ~20 s of fixtures or CLI runs: left out of `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

EPOCHS = 2


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def args(workdir, data_csv, *extra) -> list[str]:
  return ['--config=configs/tiny.py', f'--workdir={workdir}',
          f'--config.data.source=csv:{data_csv}',
          '--config.data.train_fraction=1.0',
          f'--config.train.num_epochs={EPOCHS}', *extra]


def start(command_args, **env) -> subprocess.Popen:
  return subprocess.Popen(
      [sys.executable, '-m', 'sentiment_jax.main', *command_args], cwd=REPO,
      env=cli_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True)


def finish(process: subprocess.Popen, name: str) -> tuple[str, str]:
  stdout, stderr = process.communicate(timeout=600)
  assert process.returncode == 0, f'{name}:\n{stderr[-3000:]}'
  return stdout, stderr


@pytest.fixture(scope='module')
def runs(tmp_path_factory, trained_run, sentiment_csv):
  root = tmp_path_factory.mktemp('distributed')
  multi, single = root / 'two_processes', root / 'two_devices'
  for workdir in (multi, single):
    workdir.mkdir()
    shutil.copy(trained_run / 'tokenizer.json', workdir)
  port = free_port()
  processes = {
      f'process {i}': start(args(
          multi, sentiment_csv, f'--coordinator_address=127.0.0.1:{port}',
          '--num_processes=2', f'--process_id={i}'))
      for i in range(2)}
  processes['single'] = start(
      args(single, sentiment_csv),
      XLA_FLAGS='--xla_force_host_platform_device_count=2')
  outputs = {name: finish(p, name) for name, p in processes.items()}
  return multi, single, outputs


def test_each_process_saw_one_device_of_two(runs):
  _, _, outputs = runs
  for i in range(2):
    assert f'process {i + 1}/2' in outputs[f'process {i}'][1]


def test_only_process_0_reports(runs):
  _, _, outputs = runs
  assert 'accuracy' in outputs['process 0'][0]  # The eval table.
  # Process 1's stdout holds only gloo's own connection log, if anything.
  assert 'accuracy' not in outputs['process 1'][0]
  assert 'next:' not in outputs['process 1'][0]
  assert '--process_id' not in outputs['process 0'][0]  # Hints run alone.


def test_two_processes_match_one_process_with_two_devices(runs):
  multi, single, _ = runs
  ours, theirs = latest_step_dirs(multi)[-1], latest_step_dirs(single)[-1]
  assert ours.name == theirs.name
  assert_params_close(restore_raw(ours)['params'],
                      restore_raw(theirs)['params'])
  report = lambda w: json.loads((w / 'eval_test.json').read_text())['metrics']
  ours, theirs = report(multi), report(single)
  assert ours['accuracy'] == theirs['accuracy']
  assert ours['log_loss'] == pytest.approx(theirs['log_loss'], abs=1e-5)


def test_a_single_process_evaluates_what_two_processes_wrote(runs, tmp_path):
  multi, _, _ = runs
  written = json.loads((multi / 'eval_test.json').read_text())['metrics']
  check_ok(run_cli('--config=configs/tiny.py', f'--workdir={multi}',
                   '--mode=eval', '--eval_split=test'))
  again = json.loads((multi / 'eval_test.json').read_text())['metrics']
  assert again['accuracy'] == written['accuracy']
  assert again['log_loss'] == pytest.approx(written['log_loss'], abs=1e-5)


def test_only_process_0_wrote_run_files(runs):
  multi, _, _ = runs
  records = [json.loads(line) for line in
             (multi / 'metrics.jsonl').read_text().splitlines()]
  steps = [r['step'] for r in records if 'train/loss' in r]
  assert steps == sorted(set(steps))  # One writer: no step logged twice.
  assert len(list((multi / 'tensorboard').iterdir())) == 1
  assert not list(multi.glob('.write_test*'))
