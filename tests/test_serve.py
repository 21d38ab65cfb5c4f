"""The HTTP server: every route, each bad input, predict parity with the CLI, start-up errors."""

import asyncio
import json
import socket
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from helpers import PREDICT_TEXTS, REPO, check_ok, cli_env, close, run_cli
from test_cli import message_lines

TEXTS = PREDICT_TEXTS


@pytest.fixture(scope='module')
def predictor(trained_run):
  from sentiment_jax import inference
  return inference.load(trained_run)


@pytest.fixture(scope='module')
def client(predictor):
  from sentiment_jax import serve_app
  with TestClient(serve_app.create_app(predictor, max_texts=4)) as c:
    yield c


def test_predict_equals_the_cli(client, trained_run):
  response = client.post('/v1/predict', json={'texts': TEXTS})
  assert response.status_code == 200
  cli = check_ok(run_cli('--config=configs/tiny.py', f'--workdir={trained_run}',
                         '--mode=predict', *[f'--text={t}' for t in TEXTS]))
  expected = [json.loads(line) for line in cli.stdout.splitlines()]
  assert response.json()['predictions'] == [close(p) for p in expected]


def test_concurrent_requests_share_forward_passes(predictor):
  """24 one-text requests queued before the worker's turn: one turn, run
  as ceil(24 / 8) = 3 forward passes, each request answered with its own
  text's row."""
  from sentiment_jax import inference, serve_app
  batcher = serve_app.Batcher(predictor, max_batch=64, wait_seconds=0.0)
  texts = inference.check_texts(TEXTS * 8)

  async def scenario():
    calls = [asyncio.ensure_future(batcher.predict([t], 0.95)) for t in texts]
    await asyncio.sleep(0)  # Every call is queued.
    worker = asyncio.create_task(batcher.run())
    answers = await asyncio.gather(*calls)
    worker.cancel()
    return answers

  answers = asyncio.run(scenario())
  assert batcher.forward_passes == 3
  alone = {r['text']: close(r) for r in predictor.predict(TEXTS)}
  assert [a[0] for a in answers] == [alone[t] for t in texts]


def test_concurrent_http_requests_get_their_own_answers(client):
  import concurrent.futures
  with concurrent.futures.ThreadPoolExecutor(8) as pool:
    answers = list(pool.map(
        lambda t: client.post('/v1/predict', json={'texts': [t]}).json(),
        TEXTS * 8))
  single = client.post('/v1/predict', json={'texts': TEXTS}).json()
  by_text = {r['text']: close(r) for r in single['predictions']}
  for answer in answers:
    row = answer['predictions'][0]
    assert row == by_text[row['text']]


def test_explain_returns_scores_per_word(client):
  response = client.post('/v1/explain', json={'text': 'a superb film, not '
                                              'dull', 'heads': True})
  assert response.status_code == 200
  data = response.json()
  assert data['words'] == ['a', 'superb', 'film', ',', 'not', 'dull']
  for name in ('attention', 'rollout', 'gradient_x_input', 'masking'):
    assert len(data['scores'][name]) == len(data['words'])
    words = [s['text'] for s in data['segments'][name] if s['kind'] == 'word']
    assert words == data['words']
  assert data['label'] in ('positive', 'negative')
  assert data['heads_png'].startswith('iVBOR')  # base64 of the PNG magic.


def test_page_health_and_info(client):
  page = client.get('/')
  assert page.status_code == 200 and '<textarea' in page.text
  assert 'http' not in page.text.replace('http-equiv', '')  # Nothing remote.
  # The tiny run reads by rule; the page says what the rules do.
  assert 'the 3 pieces after a negator' in page.text
  assert client.get('/healthz').json() == {'status': 'ok'}
  info = client.get('/v1/info').json()
  assert info['checkpoint_step'] > 0 and info['config']['model']['num_layers']
  assert info['test_accuracy'] is not None and info['temperature'] is None


BAD = {
    'invalid_json': (b'{"texts": [', 400, 'not valid JSON'),
    'non_utf8': (b'{"texts": ["\xff"]}', 400, 'not UTF-8'),
    'wrong_type': (json.dumps({'texts': 'one text'}).encode(), 422, 'texts'),
    'number_text': (json.dumps({'texts': [3]}).encode(), 422, 'texts.0'),
    'empty_text': (json.dumps({'texts': ['ok', ' \n ']}).encode(), 422,
                   'text #2 is empty'),
    'no_texts': (json.dumps({'texts': []}).encode(), 422, 'texts'),
    'too_many': (json.dumps({'texts': ['a'] * 5}).encode(), 422, 'limit of 4'),
    'unknown_field': (json.dumps({'texts': ['a'], 'x': 1}).encode(), 422, 'x'),
    'bad_target': (json.dumps({'texts': ['a'], 'target_accuracy': 1.5}
                              ).encode(), 422, 'target_accuracy'),
    'too_big': (b'{"texts": ["' + b'a' * (2 << 20) + b'"]}', 413, 'limit'),
}


@pytest.mark.parametrize('name', sorted(BAD))
def test_bad_input_gets_a_clear_4xx(client, name):
  body, status, message = BAD[name]
  response = client.post('/v1/predict', content=body,
                         headers={'content-type': 'application/json'})
  assert response.status_code == status
  assert message in response.json()['error']
  assert 'Traceback' not in response.text
  # The server keeps serving.
  assert client.post('/v1/predict', json={'texts': ['fine']}).status_code == 200


def test_unknown_route_and_empty_explain(client):
  response = client.get('/v1/nothing')
  assert response.status_code == 404 and 'no route' in response.json()['error']
  response = client.post('/v1/explain', json={'text': '   '})
  assert response.status_code == 422 and 'empty' in response.json()['error']


def serve(*args):
  return subprocess.run([sys.executable, '-m', 'sentiment_jax.serve', *args],
                        cwd=REPO, env=cli_env(), capture_output=True,
                        text=True, timeout=120)


def test_startup_errors_are_one_line(tmp_path, trained_run):
  missing = serve(f'--workdir={tmp_path / "none"}', '--port=0')
  with socket.socket() as taken:
    taken.bind(('127.0.0.1', 0))
    taken.listen()
    port = taken.getsockname()[1]
    in_use = serve(f'--workdir={trained_run}', f'--port={port}')
  for result, expected in ((missing, 'none'), (in_use, f'port {port}')):
    assert result.returncode != 0
    lines = message_lines(result.stderr)
    assert len(lines) == 1 and expected in lines[0], result.stderr[-2000:]


@pytest.mark.slow  # Over 10 s.
def test_load_test_checks_every_answer(tmp_path, trained_run):
  out = tmp_path / 'bench.json'
  result = subprocess.run(
      [sys.executable, '-m', 'sentiment_jax.serve_bench',
       f'--workdir={trained_run}', '--requests=6', '--rounds=1',
       f'--output={out}'], cwd=REPO, env=cli_env(), capture_output=True,
      text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  data = json.loads(out.read_text())
  assert set(data['results']) == {'batched', 'one_at_a_time'}
  for rows in data['results'].values():
    assert [r['concurrency'] for r in rows] == [1, 8, 32]
    for row in rows:
      assert row['requests'] == 6 and row['errors'] == row['wrong'] == 0
      assert (row['requests_per_second_min'] <= row['requests_per_second']
              <= row['requests_per_second_max'])
  assert set(data['speedup']) == {'1', '8', '32'}
