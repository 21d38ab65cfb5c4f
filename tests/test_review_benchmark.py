"""`python -m review.benchmark --quick` runs its variants and its JSON renders."""

import importlib.util
import json
import subprocess
import sys

import pytest

from helpers import NEEDS_TORCH, REPO, cli_env, require
from review import findings, report

# Over ~20 s of fixtures or CLI runs: left out of `pytest -m "not slow"`.
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def quick(tmp_path_factory):
  require(importlib.util.find_spec('torch') is not None, NEEDS_TORCH)
  out = tmp_path_factory.mktemp('bench') / 'results.json'
  result = subprocess.run(
      [sys.executable, '-m', 'review.benchmark', '--quick',
       '--variants=naive,ours,ours_2dev,torch_eager', f'--out={out}'],
      cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout, json.loads(out.read_text())


def test_last_line_is_the_json_result(quick):
  stdout, written = quick
  last = json.loads(stdout.strip().splitlines()[-1])
  assert last == written
  for key in ('ours_vs_torch_eager', 'ours_vs_naive', 'mfu',
              'matmul_peak_gflops'):
    assert last[key] > 0, key
  for name in ('naive', 'ours', 'ours_2dev', 'torch_eager'):
    variant = last['variants'][name]
    assert variant['train']['n'] == 2
    assert variant['train']['min_s'] <= variant['train']['median_s']
    assert variant['peak_rss_mb'] > 0
    assert variant['threads'] >= 1
  assert 'torch_compile' not in last['variants']
  assert last['ours_vs_torch_compile'] is None
  # Ours also timed its step's matmuls alone, in every round; no one else.
  alone = last['variants']['ours']['matmuls']
  assert alone['n'] == 2 and alone['count'] > 0
  assert alone['tflops'] == pytest.approx(last['train_tflops_per_step'])
  assert alone['share_of_step'] == pytest.approx(
      alone['median_s'] / last['variants']['ours']['train']['median_s'])
  assert last['ours_matmuls_alone_vs_torch_eager'] > 0
  # PyTorch's worker ran the same matmuls (ours' step's) in its own kernels
  # and in XLA's.
  eager = last['variants']['torch_eager']
  for kind in ('matmuls', 'matmuls_xla'):
    assert (eager[kind]['count'], eager[kind]['tflops']) == (
        alone['count'], alone['tflops'])
  assert last['xla_matmuls_vs_torch_matmuls'] == pytest.approx(
      eager['matmuls']['median_s'] / eager['matmuls_xla']['median_s'])
  assert 'matmuls' not in last['variants']['ours_2dev']


def test_report_renders_every_finding_and_the_measured_rows(quick):
  _, results = quick
  text = report.render(results)
  for finding in findings.FINDINGS:
    assert f'| {finding.number} | {finding.title} |' in text
  # Only the optimisation rows whose two variants ran.
  assert 'One fused QKV' not in text  # naive_jit did not run.
  assert 'Batch split over 2 host devices' in text
  assert f'{results["ours_vs_torch_eager"]:.2f}×' in text
  assert 'matmuls of ours\' step' in text


def test_an_unknown_variant_is_refused_in_one_line():
  result = subprocess.run(
      [sys.executable, '-m', 'review.benchmark', '--variants=ours,jax_fast'],
      cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert result.stderr.strip().splitlines() == [
      "error: unknown --variants ['jax_fast']; choose from "
      'naive,naive_jit,ours,ours_ynnpack,ours_small_pages,ours_2dev,'
      'torch_eager,torch_compile']


def test_the_report_refuses_a_missing_results_file(tmp_path):
  result = subprocess.run(
      [sys.executable, '-m', 'review.report',
       f'--results={tmp_path}/none.json', f'--out={tmp_path}/REVIEW.md'],
      cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert len(result.stderr.strip().splitlines()) == 1
  assert 'run `python -m review.benchmark' in result.stderr
  assert not (tmp_path / 'REVIEW.md').exists()
