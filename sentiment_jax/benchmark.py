"""Throughput benchmark: train-step MFU against a matmul peak measured in the same run.

  python -m sentiment_jax.benchmark --config=configs/base.py [--workdir=runs/base]

Prints training tokens/s and examples/s at fixed shapes, model FLOPs
utilisation (analytic matmul FLOPs / time / measured peak, cross-checked with
XLA's own count), eval batch latency, and, given a trained `--workdir`,
end-to-end predict latency for one review (tokenize + forward).
"""

from __future__ import annotations

import json
import statistics

import jax
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from sentiment_jax import hugepages, inference, models, sharding, steps
from sentiment_jax.timing import matmul_peak, time_call

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/base.py',
                                          'Config file to benchmark.')
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Trained run for the predict latency (optional).')
_SEQ_LENS = flags.DEFINE_list(
    'seq_lens', None, 'Padded sequence lengths to time; default: max_len.')
_REPEATS = flags.DEFINE_integer('repeats', 10, 'Timed calls per measurement.')


def benchmark(config, workdir: str | None, seq_lens: list[int],
              repeats: int) -> dict:
  peak = matmul_peak()
  result = {'device': str(jax.devices()[0].device_kind),
            'num_devices': jax.device_count(),
            'matmul_peak_gflops': peak / 1e9, 'train': [], 'eval': []}
  batch = config.data.batch_size
  cfg = models.TransformerConfig.from_run_config(
      config, config.data.vocab_size, models.TransformerConfig.NO_NEGATION_IDS)
  model = models.Classifier(cfg)
  parallel = sharding.DataParallel(
      models.Classifier(cfg.replace(deterministic=True)))
  train_step = steps.jit_train_step(parallel)
  rng = np.random.default_rng(0)
  for seq in seq_lens:
    state = parallel.replicate(
        steps.create_train_state(jax.random.PRNGKey(0), config, model, 1000))
    tokens = rng.integers(3, cfg.vocab_size, (batch, seq), dtype=np.int32)
    data = parallel.shard({'tokens': tokens,
                           'label': rng.integers(0, 2, batch, np.int32)})
    # Donation consumes the state, so each call feeds the previous output.
    holder = [state]

    def step():
      holder[0], metrics = train_step(holder[0], data)
      return metrics['loss']

    seconds = statistics.median(time_call(step, repeats))
    flops = models.TRAIN_FLOPS_PER_FORWARD * batch * models.forward_flops(
        cfg, seq)
    xla = train_step.lower(holder[0], data).compile().cost_analysis()
    xla_flops = (xla[0] if isinstance(xla, list) else xla).get('flops', 0.0)
    result['train'].append({
        'batch': batch, 'seq_len': seq, 'step_ms': 1e3 * seconds,
        'examples_per_s': batch / seconds, 'tokens_per_s': batch * seq / seconds,
        'model_tflops_per_step': flops / 1e12,
        'xla_tflops_per_step': xla_flops / 1e12,
        'mfu': flops / seconds / peak})
    eval_batch = config.data.eval_batch_size
    eval_tokens = parallel.shard({
        'tokens': rng.integers(3, cfg.vocab_size, (eval_batch, seq),
                               dtype=np.int32)}, ('tokens',))['tokens']
    params = holder[0].params
    seconds = statistics.median(time_call(
        lambda: parallel.eval_step(params, eval_tokens), repeats))
    result['eval'].append({'batch': eval_batch, 'seq_len': seq,
                           'batch_ms': 1e3 * seconds,
                           'examples_per_s': eval_batch / seconds})
  if workdir:
    predictor = inference.load_predictor(config, workdir)
    text = ('A slow start, but the second half is gripping and the lead '
            'performance is one of the best I have seen this year. ') * 8

    def predict_one():
      return predictor.logits(predictor.encode([text]))

    times = time_call(predict_one, repeats)
    result['predict_one_review_ms'] = {
        'p50': 1e3 * statistics.median(times), 'max': 1e3 * max(times),
        'tokens': int(predictor.encode([text]).lengths[0])}
  return result


def main(argv) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)  # Orbax logs every restore at INFO.
  config = _CONFIG.value
  seq_lens = [int(s) for s in _SEQ_LENS.value or [config.data.max_len]]
  result = benchmark(config, _WORKDIR.value, seq_lens, _REPEATS.value)
  print(f'device: {result["device"]} x{result["num_devices"]}; matmul peak '
        f'(2048^3 f32): {result["matmul_peak_gflops"]:.1f} GFLOP/s')
  for row in result['train']:
    print(f'train [{row["batch"]}, {row["seq_len"]}]: {row["step_ms"]:.0f} '
          f'ms/step, {row["examples_per_s"]:.0f} examples/s, '
          f'{row["tokens_per_s"]:.0f} tokens/s, MFU {row["mfu"]:.1%} '
          f'({row["model_tflops_per_step"]:.3f} model TFLOP/step; XLA counts '
          f'{row["xla_tflops_per_step"]:.3f})')
  for row in result['eval']:
    print(f'eval [{row["batch"]}, {row["seq_len"]}]: {row["batch_ms"]:.0f} '
          f'ms/batch, {row["examples_per_s"]:.0f} examples/s')
  if 'predict_one_review_ms' in result:
    p = result['predict_one_review_ms']
    print(f'predict one review ({p["tokens"]} tokens, tokenize + forward): '
          f'p50 {p["p50"]:.1f} ms, max {p["max"]:.1f} ms')
  print(json.dumps(result))


if __name__ == '__main__':
  hugepages.restart_with_huge_pages()  # Time the step as training runs it.
  app.run(main)
