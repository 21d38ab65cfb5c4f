"""Side-by-side benchmark: naive vs ours vs PyTorch, in one run, alternating.

  python -m review.benchmark [--config=configs/base.py] [--quick]
      [--variants=naive,ours,...] [--repeats=7] [--out=review/results.json]

The model is the config's transformer without its n-gram table and
negation and contrast options, which the PyTorch twin lacks. Each variant
(`review/variants.py`) lives in its own worker process, so its peak
resident memory is its own; all of them inherit
the huge-page setting that `python -m sentiment_jax.main` runs with. After
every worker has warmed up (compiled), the parent asks them in turn for one
train step, one eval batch and one single-review predict, round after round,
so slow drift of a shared machine lands on every variant alike. It prints a
table and, last, one JSON line; `--out` also writes that JSON, which
`review/report.py` renders into `review/REVIEW.md`.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from review import variants as variants_lib
from sentiment_jax import hugepages, models, timing

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/base.py',
                                          'Run config whose model is timed.')
_QUICK = flags.DEFINE_bool('quick', False,
                           'Tiny shapes and 2 repeats: a smoke test for CI.')
_VARIANTS = flags.DEFINE_list('variants', list(variants_lib.NAMES),
                              'Variants to run, in this order each round.')
_REPEATS = flags.DEFINE_integer('repeats', 7, 'Timed rounds.')
_OUT = flags.DEFINE_string('out', None, 'Also write the JSON result here.')
_WORKER = flags.DEFINE_string('worker', None, 'Internal: run one variant.')
_SHAPE = flags.DEFINE_list('shape', None, 'Internal: batch,seq,eval_batch.')

KINDS = ('train', 'eval', 'predict')
# Ours and torch_eager also run ours' train-step matmuls alone, one by one,
# in every round, in their own library's kernels (how much of the step they
# take); torch_eager runs them in XLA's kernels too, so that the two
# libraries' kernels compare inside one process.
MATMULS, MATMULS_XLA = variants_lib.MATMULS, variants_lib.MATMULS_XLA


def shrink(config) -> None:
  """--quick: a model and batch small enough for a CI smoke test."""
  config.data.max_len = 64
  config.data.vocab_size = 512
  config.data.batch_size = 8
  config.data.eval_batch_size = 8
  config.model.embed_dim = 32
  config.model.mlp_dim = 64


def worker(config, name: str, shape: list[int]) -> None:
  """Serves timing requests for one variant over stdin/stdout."""
  variant = variants_lib.build(name, config, *shape)
  calls = {'train': variant.train, 'eval': variant.eval,
           'predict': variant.predict}
  ready = {'ready': True, 'threads': variant.threads, 'floors': {}}
  for kind, floor in variant.floors.items():
    calls[kind] = floor
    ready['floors'][kind] = {'count': floor.count,
                             'tflops': floor.flops / 1e12}
  for call in calls.values():  # Warm-up: compile and touch every buffer.
    call()
    call()
  print(json.dumps(ready), flush=True)
  for line in sys.stdin:
    command = line.strip()
    if command == 'rss':
      # ru_maxrss is in KiB on Linux: this process's peak, warm-up included.
      peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
      print(json.dumps({'peak_rss_mb': peak}), flush=True)
      return
    start = time.perf_counter()
    calls[command]()
    print(json.dumps({'seconds': time.perf_counter() - start}), flush=True)


class Worker:
  """The parent's handle on one worker process."""

  def __init__(self, name: str, argv: list[str]):
    self.name = name
    self.process = subprocess.Popen(
        [sys.executable, '-m', 'review.benchmark', f'--worker={name}', *argv],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, **variants_lib.ENVIRONMENT.get(name, {})})

  def ask(self, command: str | None = None) -> dict:
    if command:
      self.process.stdin.write(command + '\n')
      self.process.stdin.flush()
    line = self.process.stdout.readline()
    if not line:
      raise RuntimeError(f'benchmark worker {self.name} exited '
                         f'({self.process.wait()}); its error is above')
    return json.loads(line)


def summarise(times: list[float]) -> dict:
  return {'median_s': statistics.median(times), 'min_s': min(times),
          'max_s': max(times), 'n': len(times)}


def run(config, names: list[str], repeats: int, shape: list[int],
        argv: list[str]) -> dict:
  batch, seq, eval_batch = shape
  peak_before = timing.matmul_peak()
  workers = [Worker(name, argv) for name in names]
  ready = {w.name: w.ask() for w in workers}  # All warm now.
  times = {w.name: {kind: [] for kind in KINDS} for w in workers}
  for _ in range(repeats):
    for kind in KINDS:
      for w in workers:
        times[w.name][kind].append(w.ask(kind)['seconds'])
    for w in workers:
      for kind in ready[w.name]['floors']:
        times[w.name].setdefault(kind, []).append(w.ask(kind)['seconds'])
  memory = {w.name: w.ask('rss')['peak_rss_mb'] for w in workers}
  for w in workers:
    w.process.wait()
  # One read of the peak ranged from 253 to 310 GFLOP/s across runs on a
  # shared 2-core machine; MFU divides by the higher of two reads, so it is
  # not flattered by a slow one.
  peak_reads = [peak_before, timing.matmul_peak()]
  peak = max(peak_reads)
  cfg = models.TransformerConfig.from_run_config(
      config, config.data.vocab_size, models.TransformerConfig.NO_NEGATION_IDS)
  flops = models.TRAIN_FLOPS_PER_FORWARD * batch * models.forward_flops(
      cfg, seq)
  result = {'shape': {'batch': batch, 'seq_len': seq,
                      'eval_batch': eval_batch,
                      'predict_tokens': variants_lib.predict_tokens(cfg)},
            'matmul_peak_gflops': peak / 1e9,
            'matmul_peak_reads_gflops': [p / 1e9 for p in peak_reads],
            'cpu_count': os.cpu_count(),
            'train_tflops_per_step': flops / 1e12, 'repeats': repeats,
            'variants': {}}
  for name in names:
    train = summarise(times[name]['train'])
    result['variants'][name] = {
        'threads': ready[name]['threads'], 'train': train,
        'eval': summarise(times[name]['eval']),
        'predict': summarise(times[name]['predict']),
        'examples_per_s': batch / train['median_s'],
        'tokens_per_s': batch * seq / train['median_s'],
        'mfu': flops / train['median_s'] / peak,
        'peak_rss_mb': memory[name]}
    for kind, floor in ready[name]['floors'].items():
      alone = summarise(times[name][kind])
      result['variants'][name][kind] = {
          **alone, **floor,
          # The MFU of a step that were only these matmuls.
          'mfu': floor['tflops'] * 1e12 / alone['median_s'] / peak}
    if MATMULS in times[name]:
      result['variants'][name][MATMULS]['share_of_step'] = (
          result['variants'][name][MATMULS]['median_s'] / train['median_s'])
  throughput = {n: v['tokens_per_s'] for n, v in result['variants'].items()}

  def ratio(a, b):
    return throughput[a] / throughput[b] if {a, b} <= throughput.keys() else None

  result.update(
      ours_vs_torch_eager=ratio('ours', 'torch_eager'),
      ours_vs_torch_compile=ratio('ours', 'torch_compile'),
      ours_vs_naive=ratio('ours', 'naive'),
      ours_vs_naive_jit=ratio('ours', 'naive_jit'),
      ours_vs_ours_ynnpack=ratio('ours', 'ours_ynnpack'),
      ours_vs_ours_small_pages=ratio('ours', 'ours_small_pages'),
      ours_2dev_vs_ours=ratio('ours_2dev', 'ours'),
      ours_2dev_vs_torch_eager=ratio('ours_2dev', 'torch_eager'),
      mfu=result['variants'].get('ours', {}).get('mfu'))
  ours, eager = (result['variants'].get(n) for n in ('ours', 'torch_eager'))
  # The ceiling of ours_vs_torch_eager with these matmul kernels: ours' step
  # if it were nothing but its matmuls.
  result['ours_matmuls_alone_vs_torch_eager'] = (
      eager['train']['median_s'] / ours[MATMULS]['median_s']
      if ours and eager and MATMULS in ours else None)
  # The same matmuls in XLA's and PyTorch's kernels, in one process
  # (> 1: XLA's are faster).
  result['xla_matmuls_vs_torch_matmuls'] = (
      eager[MATMULS]['median_s'] / eager[MATMULS_XLA]['median_s']
      if eager and MATMULS_XLA in eager else None)
  return result


def print_table(result: dict) -> None:
  s = result['shape']
  reads = ' and '.join(f'{p:.1f}' for p in result['matmul_peak_reads_gflops'])
  print(f'matmul peak (2048^3 f32, JAX): {result["matmul_peak_gflops"]:.1f} '
        f'GFLOP/s (reads before and after: {reads}); '
        f'{result["cpu_count"]} CPUs; train [{s["batch"]}, '
        f'{s["seq_len"]}], eval [{s["eval_batch"]}, {s["seq_len"]}], predict '
        f'[1, {s["predict_tokens"]}]; median (min-max) of '
        f'{result["repeats"]} alternating rounds')
  print(f'{"variant":<17}{"threads":>8}{"train ms":>22}{"tokens/s":>10}'
        f'{"ex/s":>7}{"MFU":>7}{"eval ms":>9}{"predict ms":>11}{"peak MB":>9}')
  for name, v in result['variants'].items():
    t = v['train']
    spread = f'{1e3 * t["median_s"]:.0f} ({1e3 * t["min_s"]:.0f}-' \
             f'{1e3 * t["max_s"]:.0f})'
    print(f'{name:<17}{v["threads"]:>8}{spread:>22}{v["tokens_per_s"]:>10.0f}'
          f'{v["examples_per_s"]:>7.1f}{v["mfu"]:>7.1%}'
          f'{1e3 * v["eval"]["median_s"]:>9.1f}'
          f'{1e3 * v["predict"]["median_s"]:>11.1f}{v["peak_rss_mb"]:>9.0f}')
  for name, v in result['variants'].items():
    for kind in (MATMULS, MATMULS_XLA):
      if kind in v:
        m = v[kind]
        kernels = 'XLA\'s' if kind == MATMULS_XLA else 'its own'
        share = (f', {m["share_of_step"]:.0%} of its step'
                 if 'share_of_step' in m else '')
        print(f'{name}: ours\' {m["count"]} matmuls ({m["tflops"]:.3f} '
              f'TFLOP) in {kernels} kernels, each run alone: '
              f'{1e3 * m["median_s"]:.0f} ms ({1e3 * m["min_s"]:.0f}-'
              f'{1e3 * m["max_s"]:.0f}){share}; MFU {m["mfu"]:.1%}')
  for key in ('ours_vs_torch_eager', 'ours_vs_torch_compile', 'ours_vs_naive',
              'ours_vs_naive_jit', 'ours_vs_ours_ynnpack',
              'ours_vs_ours_small_pages', 'ours_2dev_vs_ours',
              'ours_2dev_vs_torch_eager', 'ours_matmuls_alone_vs_torch_eager',
              'xla_matmuls_vs_torch_matmuls'):
    if result[key] is not None:
      print(f'{key}: {result[key]:.2f}x train tokens/s')


def main(argv) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)  # JAX logs its backend search at INFO.
  config = _CONFIG.value
  # The PyTorch twin has no n-gram table or negation and contrast options:
  # every variant times the transformer.
  config.model.ngram_buckets = 0
  for option in ('negation_scope', 'negation_flip', 'silence_negators',
                 'contrast_scope', 'ngram_skip_negated'):
    config.model[option] = False
  if _QUICK.value:
    shrink(config)
  shape = [int(x) for x in _SHAPE.value] if _SHAPE.value else [
      config.data.batch_size, config.data.max_len, config.data.eval_batch_size]
  if _WORKER.value:
    worker(config, _WORKER.value, shape)
    return
  unknown = sorted(set(_VARIANTS.value) - set(variants_lib.NAMES))
  if unknown:
    sys.exit(f'error: unknown --variants {unknown}; choose from '
             f'{",".join(variants_lib.NAMES)}')
  # Workers get the same config: the --config flag and its overrides.
  passthrough = [a for a in sys.argv[1:] if a.startswith('--config')]
  passthrough += [f'--shape={",".join(map(str, shape))}'] + (
      ['--quick'] if _QUICK.value else [])
  repeats = 2 if _QUICK.value else _REPEATS.value
  result = run(config, _VARIANTS.value, repeats, shape, passthrough)
  print_table(result)
  if _OUT.value:
    Path(_OUT.value).write_text(json.dumps(result, indent=2) + '\n')
  print(json.dumps(result))


if __name__ == '__main__':
  hugepages.restart_with_huge_pages()
  app.run(main)
