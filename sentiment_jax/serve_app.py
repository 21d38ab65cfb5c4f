"""The HTTP app: `/v1/predict` (micro-batched), `/v1/explain`, `/`, `/healthz`, `/v1/info`.

Concurrent `/v1/predict` requests are micro-batched: when the worker is free,
it takes every waiting request (up to `max_batch` texts, waiting up to
`wait_seconds` for more; 0 adds no latency: requests that arrive during a
forward pass simply join the next), sorts their texts by length and answers
them in forward passes of `FORWARD_BATCH`, each padded only to its own
longest text. Rows come from `Predictor.rows`, so they mean exactly what
`--mode=predict` prints. Bodies
are parsed by hand before pydantic validates them, so invalid UTF-8, invalid
JSON, an oversized body and a wrong field each get their own 4xx message.
Every error is JSON `{"error": ...}`; no traceback reaches a client.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException

from sentiment_jax import inference, input_pipeline
from sentiment_jax.explain import attribution, figures, page

MAX_BODY_BYTES = 1 << 20  # Larger request bodies are refused with 413.
# Texts per forward pass. Measured on the 2-core CPU with runs/base, ms per
# review at 256 tokens: 5.8 alone, 5.0 in batches of 8, 6.1 in batches of 32
# (the [32, heads, 256, 256] attention scores fall out of cache); 32 mixed
# test reviews took 157 ms one at a time, 237 ms as one batch and 119 ms as
# length-sorted batches of 8.
FORWARD_BATCH = 8
# Compiled batch shapes; fewer texts pad up to the next with filler, more
# run as several passes of FORWARD_BATCH.
BATCH_SIZES = (1, 2, 4, FORWARD_BATCH)
MAX_BATCH = 64  # Default cap on the texts one worker turn gathers.
FILLER = '.'  # The text that pads a batch to a compiled size.
EXPLAIN_VIEWS = (('rollout', False), ('attention', False),
                 ('gradient_x_input', True), ('masking', True))


@dataclasses.dataclass
class _Job:
  texts: list[str]
  target_accuracy: float
  done: asyncio.Future


class Batcher:
  """Joins concurrent predict calls into shared forward passes.

  One forward pass runs at a time, in a worker thread, so the event loop
  keeps accepting requests while JAX computes. Jobs with different target
  accuracies share the pass; abstention is applied per job.
  """

  def __init__(self, predictor: inference.Predictor, max_batch: int,
               wait_seconds: float):
    self.predictor = predictor
    self.max_batch = max_batch
    self.wait_seconds = wait_seconds
    self.queue: asyncio.Queue[_Job] = asyncio.Queue()
    self.carried: _Job | None = None  # Taken, but did not fit the last batch.
    self.forward_passes = 0

  async def predict(self, texts: list[str], target_accuracy: float
                    ) -> list[dict]:
    job = _Job(texts, target_accuracy,
               asyncio.get_running_loop().create_future())
    await self.queue.put(job)
    return await job.done

  async def run(self) -> None:
    loop = asyncio.get_running_loop()
    while True:
      jobs = [self.carried or await self.queue.get()]
      self.carried = None
      size, deadline = len(jobs[0].texts), loop.time() + self.wait_seconds
      while size < self.max_batch:
        if not self.queue.empty():
          job = self.queue.get_nowait()
        elif loop.time() < deadline:
          try:
            job = await asyncio.wait_for(self.queue.get(),
                                         deadline - loop.time())
          except asyncio.TimeoutError:
            break
        else:
          break
        if size + len(job.texts) > self.max_batch:
          self.carried = job  # Opens the next batch: shapes stay compiled.
          break
        jobs.append(job)
        size += len(job.texts)
      try:
        results = await asyncio.to_thread(self._forward, jobs)
      except Exception as e:  # A bug: fail these requests, keep serving.
        logging.exception('forward pass failed')
        for job in jobs:
          job.done.set_exception(e)
        continue
      for job, rows in zip(jobs, results):
        job.done.set_result(rows)

  def _forward(self, jobs: list[_Job]) -> list[list[dict]]:
    """Length-sorted forward passes; the rows of each job at its own target."""
    texts = [t for job in jobs for t in job.texts]
    encoded = self.predictor.encode(pad_to_size(texts))
    self.forward_passes += -(-len(encoded.ids) // FORWARD_BATCH)
    raw = self.predictor.logits(encoded, batch_size=FORWARD_BATCH)
    out, start = [], 0
    for job in jobs:
      end = start + len(job.texts)
      part = input_pipeline.Encoded(encoded.ids[start:end],
                                    encoded.full_lengths[start:end])
      out.append(self.predictor.rows(job.texts, part, raw[start:end],
                                     job.target_accuracy))
      start = end
    return out


def pad_to_size(texts: list[str]) -> list[str]:
  """Pads with filler up to the next compiled batch size (if one fits)."""
  size = next((s for s in BATCH_SIZES if s >= len(texts)), len(texts))
  return texts + [FILLER] * (size - len(texts))


def warm_up(predictor: inference.Predictor) -> None:
  """Compiles every (batch size, sequence bucket) shape a batch can take."""
  d = predictor.config.data
  for size in BATCH_SIZES:
    for length in range(d.pad_multiple, d.max_len + 1, d.pad_multiple):
      ids = [np.ones(length, np.int32)] * size
      predictor.logits(input_pipeline.Encoded(ids, np.full(size, length)))


class PredictRequest(pydantic.BaseModel):
  model_config = pydantic.ConfigDict(extra='forbid', strict=True)
  texts: list[str] = pydantic.Field(min_length=1)
  target_accuracy: float = pydantic.Field(
      inference.DEFAULT_TARGET_ACCURACY, ge=0.5, lt=1)

  @pydantic.field_validator('texts')
  @classmethod
  def _texts(cls, texts: list[str]) -> list[str]:
    return inference.check_texts(texts, 'text #{n}')


class ExplainRequest(pydantic.BaseModel):
  model_config = pydantic.ConfigDict(extra='forbid', strict=True)
  text: str
  heads: bool = False  # Also return the per-head attention figure (PNG).

  @pydantic.field_validator('text')
  @classmethod
  def _text(cls, text: str) -> str:
    return inference.check_texts([text], 'the text')[0]


class BadRequest(Exception):
  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status


async def _parse(request: Request, model: type[pydantic.BaseModel]
                 ) -> pydantic.BaseModel:
  """The body as `model`, or a BadRequest naming what is wrong with it."""
  declared = request.headers.get('content-length')
  if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
    raise BadRequest(413, f'body of {declared} bytes is over the '
                     f'{MAX_BODY_BYTES}-byte limit; send fewer or shorter texts')
  body = await request.body()
  if len(body) > MAX_BODY_BYTES:
    raise BadRequest(413, f'body is over the {MAX_BODY_BYTES}-byte limit; '
                     'send fewer or shorter texts')
  try:
    data = json.loads(body.decode('utf-8'))
  except UnicodeDecodeError as e:
    raise BadRequest(400, f'body is not UTF-8 (byte {e.start}); encode the '
                     'JSON as UTF-8') from None
  except json.JSONDecodeError as e:
    raise BadRequest(400, f'body is not valid JSON ({e.msg} at line '
                     f'{e.lineno} column {e.colno})') from None
  try:
    return model.model_validate(data)
  except pydantic.ValidationError as e:
    first = e.errors()[0]
    where = '.'.join(str(p) for p in first['loc']) or 'body'
    message = first['msg'].removeprefix('Value error, ')
    raise BadRequest(422, f'{where}: {message}') from None


def explain_payload(predictor: inference.Predictor, text: str, heads: bool
                    ) -> dict[str, Any]:
  """Per-word scores, highlight segments, and optionally the heads figure."""
  ex = attribution.explain(predictor, [text])[0]
  encoded = predictor.encode([text])  # `text` is cleaned already.
  row = predictor.rows([text], encoded, predictor.logits(encoded))[0]
  out = {**row, 'words': ex.words,
         'scores': {name: [float(v) for v in ex.word_scores[name]]
                    for name, _ in EXPLAIN_VIEWS},
         'segments': {name: page.highlight(ex, ex.word_scores[name], signed)
                      for name, signed in EXPLAIN_VIEWS}}
  if heads:
    config = predictor.model.config
    with tempfile.TemporaryDirectory() as tmp:
      path = Path(tmp) / 'heads.png'
      figures.plot_heads(ex.weights, ex.tokens, list(range(config.num_layers)),
                         list(range(config.num_heads)), path)
      out['heads_png'] = base64.b64encode(path.read_bytes()).decode('ascii')
  return out


def create_app(predictor: inference.Predictor, max_texts: int = 64,
               wait_seconds: float = 0.0, max_batch: int = MAX_BATCH
               ) -> FastAPI:
  """The app for a loaded run; `max_texts` caps one request's texts.

  `max_batch` caps the texts one worker turn gathers from waiting
  requests; 1 answers one request at a time.
  """
  batcher = Batcher(predictor, max_batch, wait_seconds)

  @contextlib.asynccontextmanager
  async def lifespan(_):
    worker = asyncio.create_task(batcher.run())
    yield
    worker.cancel()

  api = FastAPI(title='sentiment_jax', lifespan=lifespan, docs_url=None,
                redoc_url=None, openapi_url=None)
  api.state.batcher = batcher

  @api.exception_handler(BadRequest)
  async def bad_request(_, e: BadRequest):
    return JSONResponse({'error': str(e)}, status_code=e.status)

  @api.exception_handler(HTTPException)
  async def http_error(request: Request, e: HTTPException):
    message = (f'no route {request.method} {request.url.path}; see GET /'
               if e.status_code in (404, 405) else str(e.detail))
    return JSONResponse({'error': message}, status_code=e.status_code)

  @api.exception_handler(Exception)
  async def internal_error(_, e: Exception):
    logging.exception('request failed', exc_info=e)
    return JSONResponse({'error': 'internal error; the server logged it'},
                        status_code=500)

  @api.post('/v1/predict')
  async def predict(request: Request):
    body = await _parse(request, PredictRequest)
    if len(body.texts) > max_texts:
      raise BadRequest(422, f'texts: {len(body.texts)} texts is over the '
                       f'limit of {max_texts}; split the request')
    rows = await batcher.predict(body.texts, body.target_accuracy)
    return {'predictions': rows}

  @api.post('/v1/explain')
  async def explain(request: Request):
    body = await _parse(request, ExplainRequest)
    return await asyncio.to_thread(explain_payload, predictor, body.text,
                                   body.heads)

  @api.get('/healthz')
  async def healthz():
    return {'status': 'ok'}

  @api.get('/v1/info')
  async def info():
    evaluated = predictor.workdir / 'eval_test.json'
    test = (json.loads(evaluated.read_text())['metrics']['accuracy']
            if evaluated.exists() else None)
    calibration = predictor.calibration
    return {'checkpoint_step': predictor.step,
            'config': {'model': predictor.config.model.to_dict(),
                       'data': predictor.config.data.to_dict()},
            'test_accuracy': test,
            'temperature': calibration and calibration.temperature,
            'max_texts': max_texts, 'forward_passes': batcher.forward_passes}

  @api.get('/', response_class=HTMLResponse)
  async def index():
    return page.serve_page(predictor.step, [name for name, _ in EXPLAIN_VIEWS],
                           predictor.calibration is not None,
                           page.rules_note(predictor.model.config))

  return api
