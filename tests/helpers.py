"""Helpers the tests import: a learnable synthetic CSV, a CLI runner, checkpoint readers."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# JAX's persistent compilation cache, shared by every CLI subprocess of the
# suite (and kept between sessions): dozens of processes compile the same
# tiny models, and a hit loads the executable XLA compiled for that program
# and those flags, so behaviour under test is unchanged. Its key holds the
# jaxlib version and the XLA flags, so a stale entry is never a hit.
XLA_CACHE = Path(tempfile.gettempdir()) / 'sentiment_jax_tests_xla_cache'
LAW_NOISE = 0.005  # Standard deviation of synthetic sweeps' log-loss noise.

POSITIVE_WORDS = ('great', 'wonderful', 'superb', 'brilliant', 'excellent',
                  'lovely', 'amazing', 'delightful', 'moving', 'charming')
NEGATIVE_WORDS = ('terrible', 'awful', 'boring', 'dreadful', 'horrible',
                  'dull', 'poor', 'tedious', 'clumsy', 'bland')
FILLER_WORDS = ('the', 'movie', 'film', 'plot', 'acting', 'was', 'really',
                'quite', 'a', 'story', 'and', 'cast', 'ending', 'of', 'this',
                'director', 'script', 'scenes', 'music', 'it')


# Texts the API, CLI and server tests predict; the last needs cleaning.
PREDICT_TEXTS = ['a wonderful, brilliant and superb movie', 'terrible and dull',
                 '  the   plot <br /> was great  ']


def close(prediction: dict) -> dict:
  """`prediction` with its probabilities compared to within 2e-6.

  They are printed to six decimals, and a forward pass compiled in another
  process or run in another batch can differ in its last bit, which can
  round either way.
  """
  return {k: pytest.approx(v, abs=2e-6) if k.startswith('p_') else v
          for k, v in prediction.items()}


def require(available: bool, reason: str) -> None:
  """Skips the calling test (or module) with `reason` when an optional
  dependency is missing; under CI (`CI=true`), where `.ci/run` installs every
  dependency, fails instead, so CI never passes with a test left unrun."""
  if available:
    return
  if os.environ.get('CI', '').lower() == 'true':
    pytest.fail(f'{reason} (CI=true: every test must run)', pytrace=False)
  pytest.skip(reason, allow_module_level=True)


def import_or_skip(module: str, reason: str):
  """`module`, imported; if it is missing, `require`'s skip (or CI failure)."""
  try:
    return __import__(module, fromlist=['_'])
  except ImportError:
    require(False, reason)


NEEDS_TORCH = 'needs PyTorch: pip install -r review/requirements.txt'
NEEDS_PLAYWRIGHT = ('needs Playwright: pip install -r '
                    'tests/requirements-browser.txt')


def sentiment_rows(num_rows: int, seed: int = 0) -> list[tuple[str, int]]:
  """Unique filler sentences with two words of the label's sentiment mixed in.

  The label is a function of a word list a one-layer model learns in an epoch,
  so accuracy far above chance is a behaviour check, not luck.
  """
  rng = random.Random(seed)
  rows, seen = [], set()
  while len(rows) < num_rows:
    label = len(rows) % 2
    words = [rng.choice(FILLER_WORDS) for _ in range(rng.randint(4, 12))]
    for _ in range(2):
      cue = rng.choice(POSITIVE_WORDS if label else NEGATIVE_WORDS)
      words.insert(rng.randrange(len(words) + 1), cue)
    text = ' '.join(words)
    if text not in seen:
      seen.add(text)
      rows.append((text, label))
  return rows


def write_csv(path: Path, rows) -> Path:
  with open(path, 'w', newline='', encoding='utf-8') as f:
    writer = csv.writer(f)
    writer.writerow(['text', 'label'])
    writer.writerows(rows)
  return path


def write_law_results(path: Path, n: np.ndarray, d: np.ndarray,
                      loss: np.ndarray, seed: int) -> Path:
  """A sweep's results.jsonl of runs at (n, d) [runs], each loss [runs]
  times exp(noise), the noise 0.5% normal in log loss drawn from `seed`."""
  rng = np.random.default_rng(seed)
  loss = loss * np.exp(rng.normal(0.0, LAW_NOISE, len(n)))
  with open(path, 'w') as f:
    for n_i, d_i, loss_i in zip(n, d, loss):
      f.write(json.dumps(dict(
          n_params=n_i, n_params_total=1.2 * n_i, tokens=d_i,
          flops=6 * n_i * d_i, final_val_loss=loss_i, best_val_loss=loss_i,
          best_val_accuracy=0.9, overrides={}, wall_time_s=1.0,
          device='cpu')) + '\n')
  return path


def cli_env(**extra: str) -> dict[str, str]:
  """The environment for CLI subprocesses: CPU, one device unless
  overridden, and the suite's compilation cache for every compile.

  The cache gets a size limit because only then does JAX take a file lock
  around each read and write: the two test workers' subprocesses share it,
  and an unlocked read can see a half-written entry (a warning on stderr).
  """
  env = dict(os.environ)
  env.pop('XLA_FLAGS', None)
  env.update(JAX_PLATFORMS='cpu', PYTHONPATH=str(REPO),
             JAX_COMPILATION_CACHE_DIR=str(XLA_CACHE),
             JAX_COMPILATION_CACHE_MAX_SIZE=str(2 << 30),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0', **extra)
  return env


def run_cli(*args: str, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
  """Runs `python -m sentiment_jax.main ARGS` from the repo root, in `env`
  (default `cli_env()`)."""
  return subprocess.run(
      [sys.executable, '-m', 'sentiment_jax.main', *args], cwd=REPO,
      env=env or cli_env(), capture_output=True, text=True, timeout=timeout)


def run_analysis(*args: str, timeout: float = 600
                 ) -> subprocess.CompletedProcess:
  """Runs `python -m analysis.main ARGS` from the repo root."""
  return subprocess.run(
      [sys.executable, '-m', 'analysis.main', *args], cwd=REPO,
      env=cli_env(), capture_output=True, text=True, timeout=timeout)


def check_ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def train_args(workdir: Path, data_csv: Path, *extra: str) -> list[str]:
  """The tiny config on the synthetic CSV: 3 epochs of 20 steps of 16."""
  return ['--config=configs/tiny.py', f'--workdir={workdir}',
          f'--config.data.source=csv:{data_csv}',
          # tiny.py keeps 2% of train (for the embedded data): keep it all.
          '--config.data.train_fraction=1.0',
          '--config.train.num_epochs=3', *extra]


def latest_step_dirs(workdir: Path, kind: str = 'latest') -> list[Path]:
  """Committed checkpoint step directories, oldest first."""
  root = workdir / 'checkpoints' / kind
  if not root.is_dir():
    return []
  return sorted((p for p in root.iterdir() if p.name.isdigit()),
                key=lambda p: int(p.name))


def kill_once_checkpointed(args: list[str], workdir: Path,
                           kind: str = 'latest') -> list[str]:
  """Runs the CLI with `args`, SIGKILLs it as soon as a `kind` checkpoint is
  committed, and returns the step names saved by then."""
  log = workdir.parent / f'{workdir.name}_first_attempt.log'
  with open(log, 'w') as out:
    process = subprocess.Popen(
        [sys.executable, '-m', 'sentiment_jax.main', *args], cwd=REPO,
        env=cli_env(), stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while (process.poll() is None and not latest_step_dirs(workdir, kind)
           and time.monotonic() < deadline):
      time.sleep(0.02)
    still_running = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
  assert still_running, f'not killed mid-run:\n{log.read_text()[-3000:]}'
  return [p.name for p in latest_step_dirs(workdir, kind)]


def assert_same_final_state(workdir: Path, reference: Path,
                            kind: str = 'latest') -> None:
  """Bit-identical newest `kind` checkpoint (params, optimizer, step, rng)."""
  import jax  # pylint: disable=g-import-not-at-top
  ours = latest_step_dirs(workdir, kind)[-1]
  theirs = latest_step_dirs(reference, kind)[-1]
  assert ours.name == theirs.name
  paths_and_leaves = jax.tree_util.tree_leaves_with_path(restore_raw(ours))
  reference_leaves = jax.tree_util.tree_leaves(restore_raw(theirs))
  assert len(paths_and_leaves) == len(reference_leaves)
  for (path, a), b in zip(paths_and_leaves, reference_leaves):
    np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))


def restore_raw(step_dir: Path) -> dict:
  """The saved TrainState of a checkpoint as a nested dict of numpy arrays.

  Restored onto this process's first device whatever mesh wrote it, so a
  checkpoint of a multi-process run reads here too.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  path = (step_dir / 'state').absolute()
  checkpointer = ocp.StandardCheckpointer()
  local = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree_util.tree_map(
      lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=local),
      checkpointer.metadata(path).item_metadata)
  return jax.tree_util.tree_map(np.asarray, checkpointer.restore(path, target))


def read_jsonl(path: Path) -> list[dict]:
  return [json.loads(line) for line in path.read_text().splitlines() if line]


def copy_run(src: Path, dst: Path) -> Path:
  shutil.copytree(src, dst)
  return dst


def assert_params_close(actual: dict, expected: dict) -> None:
  """Params trees equal within 1e-5, leaf by leaf, named on failure.

  The attention key bias adds the same q.b_k to every score of a query row,
  which softmax cancels: its exact gradient is zero, so it holds only
  round-off that Adam scales up to +-lr. Its query and value parts are
  compared; the key part is left out.
  """
  import jax  # pylint: disable=g-import-not-at-top
  leaves = jax.tree_util.tree_leaves_with_path(actual)
  reference = jax.tree_util.tree_leaves(expected)
  assert len(leaves) == len(reference)
  for (path, ours), theirs in zip(leaves, reference):
    name = jax.tree_util.keystr(path)
    if "['qkv']['bias']" in name:
      embed = len(theirs) // 3
      ours, theirs = (np.delete(x, np.s_[embed:2 * embed])
                      for x in (ours, theirs))
    np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=1e-5,
                               err_msg=name)
