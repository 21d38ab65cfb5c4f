"""Load test of the server: `python -m sentiment_jax.serve_bench --workdir=runs/base`.

Starts `sentiment_jax.serve` on two free localhost ports, one micro-batching
and one answering a request at a time (`--max_batch=1`), and sends real test
reviews, one per request, at concurrency 1, 8 and 32, the two servers taking
turns for `--rounds` rounds. Bounded by `--requests` and `--max_seconds` per
level. Reports the median requests/s with its range, p50/p99 latency over all
rounds, the speed-up from micro-batching, and checks that every
response was a 200 equal to what `Predictor.predict` says for that text
(probabilities within 1e-5).
"""

from __future__ import annotations

import asyncio
import json
import logging as std_logging
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from absl import app, flags, logging

from sentiment_jax.errors import UserError

_WORKDIR = flags.DEFINE_string('workdir', 'runs/base', 'A trained run.')
_REQUESTS = flags.DEFINE_integer('requests', 128,
                                 'Requests sent at each concurrency.')
_MAX_SECONDS = flags.DEFINE_float('max_seconds', 120,
                                  'Time limit per concurrency level.')
_ROUNDS = flags.DEFINE_integer(
    'rounds', 5, 'Times each server runs each level, in turns; requests/s is '
    'the median.')
_OUTPUT = flags.DEFINE_string('output', None, 'Also write the results (JSON).')
CONCURRENCY = (1, 8, 32)
MODES = {'batched': (), 'one_at_a_time': ('--max_batch=1',)}  # Server flags.


def _free_port() -> int:
  with socket.socket() as probe:
    probe.bind(('127.0.0.1', 0))
    return probe.getsockname()[1]


def _start(workdir: str, *extra: str) -> tuple[subprocess.Popen, str]:
  port = _free_port()
  process = subprocess.Popen(
      [sys.executable, '-m', 'sentiment_jax.serve', f'--workdir={workdir}',
       f'--port={port}', *extra], stderr=subprocess.DEVNULL)
  url = f'http://127.0.0.1:{port}'
  deadline = time.monotonic() + 300
  while time.monotonic() < deadline:
    if process.poll() is not None:
      raise UserError(f'the server exited with {process.returncode}; run '
                      f'python -m sentiment_jax.serve --workdir={workdir}')
    try:
      httpx.get(url + '/healthz', timeout=1)
      return process, url
    except httpx.HTTPError:
      time.sleep(0.5)
  process.kill()
  raise UserError('the server did not start within 300 s')


async def _level(url: str, texts: list[str], concurrency: int,
                 max_seconds: float) -> dict:
  """Sends `texts` one per request, `concurrency` at a time."""
  latencies, answers, errors = [], {}, 0
  queue = list(enumerate(texts))
  start = time.perf_counter()
  async with httpx.AsyncClient(base_url=url, timeout=120) as client:
    async def worker():
      nonlocal errors
      while queue and time.perf_counter() - start < max_seconds:
        i, text = queue.pop()
        sent = time.perf_counter()
        response = await client.post('/v1/predict', json={'texts': [text]})
        latencies.append(time.perf_counter() - sent)
        if response.status_code == 200:
          answers[i] = response.json()['predictions'][0]
        else:
          errors += 1
    await asyncio.gather(*(worker() for _ in range(concurrency)))
  seconds = time.perf_counter() - start
  return {'concurrency': concurrency, 'requests': len(latencies),
          'errors': errors, 'seconds': seconds, 'latencies': latencies,
          'answers': answers}


def same(answer: dict, expected: dict) -> bool:
  """Equal rows, probabilities within 1e-5: another batch composition may
  round the last float digits differently."""
  close = ('p_positive', 'p_positive_raw')
  return (all(answer[k] == expected[k] for k in expected if k not in close)
          and all(abs(answer[k] - expected[k]) <= 1e-5 for k in close))


def _summary(rounds: list[dict], wrong: int) -> dict:
  """One concurrency level of one server over every round."""
  latencies = [x for r in rounds for x in r['latencies']]
  rates = [r['requests'] / r['seconds'] for r in rounds]
  return {'concurrency': rounds[0]['concurrency'],
          'requests': len(latencies),
          'errors': sum(r['errors'] for r in rounds), 'wrong': wrong,
          'requests_per_second': float(np.median(rates)),
          'requests_per_second_min': min(rates),
          'requests_per_second_max': max(rates),
          'p50_ms': 1000 * float(np.percentile(latencies, 50)),
          'p99_ms': 1000 * float(np.percentile(latencies, 99))}


def main(argv) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)
  std_logging.getLogger('httpx').setLevel(std_logging.WARNING)
  try:
    from configs import base  # pylint: disable=g-import-not-at-top
    from sentiment_jax import inference  # pylint: disable=g-import-not-at-top
    predictor = inference.load_predictor(base.get_config(), _WORKDIR.value)
    test = predictor.splits()['test'].texts
    texts = random.Random(0).sample(test, min(_REQUESTS.value, len(test)))
    expected = predictor.predict(texts)
    servers = {}
    try:
      for mode, extra in MODES.items():
        servers[mode] = _start(_WORKDIR.value, *extra)
      # Both servers stay up and take turns at every level, first one then
      # the other going first, so a machine that speeds up or slows down
      # mid-run affects both alike.
      rounds = {(m, c): [] for m in MODES for c in CONCURRENCY}
      wrong = dict.fromkeys(rounds, 0)
      for k in range(_ROUNDS.value):
        order = list(servers.items())
        if k % 2:
          order.reverse()
        for concurrency in CONCURRENCY:
          for mode, (_, url) in order:
            row = asyncio.run(_level(url, texts, concurrency,
                                     _MAX_SECONDS.value))
            wrong[mode, concurrency] += sum(
                not same(row['answers'][i], expected[i])
                for i in row['answers'])
            rounds[mode, concurrency].append(row)
            print(f'round {k + 1}/{_ROUNDS.value} {mode:>14} '
                  f'c={concurrency:<3} {row["requests"] / row["seconds"]:7.1f}'
                  ' req/s', flush=True)
    finally:
      for process, _ in servers.values():
        process.terminate()
        process.wait(timeout=60)
    results = {m: [_summary(rounds[m, c], wrong[m, c]) for c in CONCURRENCY]
               for m in MODES}
    for mode, rows in results.items():
      for row in rows:
        print(f'{mode:>14} c={row["concurrency"]:<3} '
              f'{row["requests_per_second"]:7.1f} req/s (median of '
              f'{_ROUNDS.value}; {row["requests_per_second_min"]:.1f}-'
              f'{row["requests_per_second_max"]:.1f})  p50 {row["p50_ms"]:7.1f}'
              f' ms  p99 {row["p99_ms"]:7.1f} ms  ({row["requests"]} requests,'
              f' {row["errors"]} errors, {row["wrong"]} wrong)')
    speedups = {c: b['requests_per_second'] / o['requests_per_second']
                for c, b, o in zip(CONCURRENCY, results['batched'],
                                   results['one_at_a_time'])}
    for c, speedup in speedups.items():
      print(f'micro-batching speed-up at concurrency {c}: {speedup:.2f}x')
    bad = sum(r['errors'] + r['wrong'] for rows in results.values()
              for r in rows)
    if _OUTPUT.value:
      Path(_OUTPUT.value).write_text(json.dumps(
          {'workdir': _WORKDIR.value, 'rounds': _ROUNDS.value,
           'results': results, 'speedup': speedups}, indent=1))
    if bad:
      sys.exit(f'error: {bad} responses were errors or differed from '
               'Predictor.predict')
  except UserError as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  app.run(main)
