"""`python -m sentiment_jax.serve --workdir=runs/base`: serve a trained run over HTTP.

Loads the run once, compiles the shapes the server uses, checks the port,
and runs `serve_app.create_app` under uvicorn, which shuts down cleanly on
Ctrl-C and SIGTERM. Start-up failures (a missing or untrained workdir, a port
in use) print one line and exit non-zero.
"""

from __future__ import annotations

import socket
import sys

from absl import app, flags, logging

from sentiment_jax.errors import InputError, UserError

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained run directory.')
_HOST = flags.DEFINE_string(
    'host', '127.0.0.1', 'Interface to bind. The default serves this machine '
    'only; 0.0.0.0 serves anyone who can reach it (no authentication).')
_PORT = flags.DEFINE_integer('port', 8000, 'TCP port.')
_MAX_TEXTS = flags.DEFINE_integer('max_texts', 64,
                                  'Most texts one /v1/predict request may send.')
_MAX_BATCH = flags.DEFINE_integer(
    'max_batch', 64, 'Most texts the worker gathers from waiting requests in '
    'one turn, run as length-sorted forward passes of 8; 1 turns '
    'micro-batching off.')
_WAIT_MS = flags.DEFINE_float(
    'batch_wait_ms', 0.0, 'How long a free worker waits for more requests '
    'before a forward pass, in milliseconds; at 0, requests that arrive '
    'during a pass join the next one.')


def port_free(host: str, port: int) -> bool:
  with socket.socket() as probe:
    try:
      probe.bind((host, port))
    except OSError:
      return False
  return True


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  try:
    if not _WORKDIR.value:
      raise InputError('--workdir is required: pass the directory of a '
                       'trained run, e.g. --workdir=runs/base')
    if not port_free(_HOST.value, _PORT.value):
      raise InputError(f'port {_PORT.value} on {_HOST.value} is in use; '
                       'pass another --port')
    # Imported here so flag errors are instant.
    import uvicorn  # pylint: disable=g-import-not-at-top
    from sentiment_jax import inference, serve_app  # pylint: disable=g-import-not-at-top
    predictor = inference.load(_WORKDIR.value)
    print('compiling the served shapes...', file=sys.stderr)
    serve_app.warm_up(predictor)
    application = serve_app.create_app(predictor, _MAX_TEXTS.value,
                                       _WAIT_MS.value / 1000, _MAX_BATCH.value)
    print(f'serving {_WORKDIR.value} at http://{_HOST.value}:{_PORT.value}/ '
          '(Ctrl-C stops)', file=sys.stderr)
    uvicorn.run(application, host=_HOST.value, port=_PORT.value,
                log_level='warning')
  except UserError as e:
    sys.exit(f'error: {e}')
  except KeyboardInterrupt:
    pass


if __name__ == '__main__':
  app.run(main)
