"""What the training and pretraining loops share: the metrics log, the
progress bar with the periodic flush of step metrics (and its non-finite-loss
guard), and the run's tokenizer file.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
import tokenizers
import tqdm

from sentiment_jax import distributed, jsonl, models, workdir as workdir_lib
from sentiment_jax.errors import NonFiniteLossError


def _import_tensorboardx():
  """tensorboardX, without the PyTorch it imports whenever one is installed
  (review/'s requirement) just to accept torch tensors, which we never log.

  That import cost each CLI process about 2.5 s of its 7 (sentiment_jax/MEASUREMENTS.md,
  Development). With torch hidden, tensorboardX's `import torch` fails as if
  absent; afterwards torch imports as usual. A process that already holds
  torch keeps it.
  """
  if 'torch' in sys.modules:
    return importlib.import_module('tensorboardX')
  sys.modules['torch'] = None  # A None entry makes `import torch` raise.
  try:
    return importlib.import_module('tensorboardX')
  finally:
    del sys.modules['torch']


tensorboardX = _import_tensorboardx()


class MetricsLog:
  """Scalars to TensorBoard (tensorboardX) and one JSON line per record.

  `name` picks the files: `<name>.jsonl` and `tensorboard/` (for 'metrics')
  or `tensorboard/<name>`. Only the writer process (`workdir.is_writer`)
  writes; elsewhere a no-op.
  """

  def __init__(self, workdir: Path, resume_step: int, name: str = 'metrics'):
    self.path = workdir / f'{name}.jsonl'
    self.enabled = workdir_lib.is_writer()
    if not self.enabled:
      return
    # Drop records past the restored step: the resumed run rewrites them. A
    # torn last line (a kill mid-write) is dropped with them.
    if self.path.exists():
      kept = [json.dumps(r) + '\n' for _, r in jsonl.read(
          self.path, workdir_lib.WorkdirError, torn_tail_ok=True)
              if r['step'] <= resume_step]
      workdir_lib.write_atomic(self.path, ''.join(kept))
    self.file = open(self.path, 'a')
    events = workdir / 'tensorboard'
    self.writer = tensorboardX.SummaryWriter(
        str(events if name == 'metrics' else events / name))

  def write(self, step: int, scalars: dict[str, float]) -> None:
    if not self.enabled:
      return
    for name, value in scalars.items():
      self.writer.add_scalar(name, value, step)
    self.file.write(json.dumps({'step': step, **scalars}) + '\n')
    self.file.flush()

  def records(self) -> list[dict]:
    return [r for _, r in jsonl.read(self.path, workdir_lib.WorkdirError)]

  def close(self) -> None:
    if self.enabled:
      self.writer.close()
      self.file.close()


def load_or_make_tokenizer(workdir: Path,
                           make: Callable[[], tokenizers.Tokenizer]
                           ) -> tokenizers.Tokenizer:
  """The workdir's tokenizer; on a first run process 0 saves `make()` there.

  The trainer breaks ties in hash order, so processes that each trained
  their own could disagree; the others read process 0's file instead.
  """
  path = workdir_lib.tokenizer_path(workdir)

  def load_or_make():
    if not path.exists():
      workdir_lib.write_atomic(path, make().to_str())
    return workdir_lib.load_tokenizer(workdir)

  return distributed.process_0_first(load_or_make, 'tokenizer saved')


class StepLog:
  """A loop's progress bar, metrics log and throughput window.

  `add` takes each step's metrics still on the device; `flush` logs the mean
  of those pending as `<prefix>/<name>` and stops on a non-finite loss.
  Reading metrics only at a flush, not every step, keeps dispatch
  asynchronous. `prefix` is also the config block ('train', 'pretrain') the
  non-finite-loss message points at.
  """

  def __init__(self, workdir: Path, resume_step: int, total_steps: int,
               prefix: str, name: str = 'metrics'):
    self.log = MetricsLog(workdir, resume_step, name)
    self.prefix = prefix
    self.bar = tqdm.tqdm(total=total_steps, initial=resume_step, desc=prefix,
                         unit='step', dynamic_ncols=True,
                         disable=not workdir_lib.is_writer())
    self.pending: list[tuple[int, dict]] = []
    self.window = {'examples': 0, 'tokens': 0, 'time': time.perf_counter()}

  def add(self, step: int, metrics: dict, tokens: np.ndarray) -> None:
    """Records step `step`, which trained on `tokens` (`[batch, seq]`)."""
    self.pending.append((step, metrics))
    self.window['examples'] += len(tokens)
    self.window['tokens'] += int((tokens != models.PAD_ID).sum())
    self.bar.update()

  def restart_clock(self) -> None:
    """Throughput excludes what ran since the last step (an evaluation)."""
    self.window['time'] = time.perf_counter()

  def write(self, step: int, scalars: dict[str, float]) -> None:
    self.log.write(step, scalars)

  def flush(self) -> None:
    if not self.pending:
      return
    prefix, window = self.prefix, self.window
    values = jax.device_get([m for _, m in self.pending])
    for (step, _), m in zip(self.pending, values):
      if not np.isfinite(m['loss']):
        raise NonFiniteLossError(
            f'loss is {m["loss"]} at step {step}; lower {prefix}.learning_rate '
            f'or {prefix}.grad_clip, or check the data')
    mean = {f'{prefix}/{k}': float(np.mean([m[k] for m in values]))
            for k in values[0]}
    elapsed = time.perf_counter() - window['time']
    mean[f'{prefix}/examples_per_s'] = window['examples'] / elapsed
    mean[f'{prefix}/tokens_per_s'] = window['tokens'] / elapsed
    self.log.write(self.pending[-1][0], mean)
    self.bar.set_postfix(loss=f'{mean[f"{prefix}/loss"]:.4f}',
                         ex_s=f'{mean[f"{prefix}/examples_per_s"]:.0f}',
                         tok_s=f'{mean[f"{prefix}/tokens_per_s"]:.0f}')
    self.pending.clear()
    window.update(examples=0, tokens=0, time=time.perf_counter())

  def records(self) -> list[dict]:
    return self.log.records()

  def close(self) -> None:
    self.bar.close()
    self.log.close()
