"""Command line: `python -m sentiment_jax.main --config=configs/base.py [--mode=...]`.

Short absl glue in the style of the Flax examples. Expected failures (bad
input, missing checkpoints) are caught here and printed as one line with a
non-zero exit status.
"""

import os
import sys
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Config file, e.g. configs/base.py.', lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Run directory; default runs/<config file name>.')
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'predict'],
                          'What to do.')
_EVAL_SPLIT = flags.DEFINE_string(
    'eval_split', 'test',
    'Split for --mode=eval: test, validation, train or rotten_tomatoes.')
_TEXT = flags.DEFINE_multi_string('text', [], 'Text to classify (repeatable).')
_INPUT_FILE = flags.DEFINE_string(
    'input_file', None,
    'File to classify: one text per line, or JSONL with a "text" field.')
_OUTPUT_FILE = flags.DEFINE_string(
    'output_file', None, 'Also write the predictions (JSONL) here.')
flags.mark_flag_as_required('config')


def default_workdir() -> str:
  """`runs/<config file stem>`, so the bare command needs no --workdir."""
  config_path = flags.FLAGS['config'].config_filename
  return os.path.join('runs', Path(config_path.split(':')[0]).stem)


def run(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  # Heavy imports after flag parsing, so --help and flag errors are instant.
  from sentiment_jax import (evaluate, inference, input_pipeline, predict,
                             train, workdir)
  import jax

  if not flags.FLAGS['verbosity'].present:
    # Orbax and TFDS log every file operation at INFO; -v 0 brings them back.
    logging.set_verbosity(logging.WARNING)
  config = _CONFIG.value
  workdir_path = _WORKDIR.value or default_workdir()
  print(f'JAX {jax.__version__}, process {jax.process_index() + 1}/'
        f'{jax.process_count()}, devices: {jax.devices()}', file=sys.stderr)
  expected = (input_pipeline.DataError, workdir.WorkdirError,
              workdir.ConfigError, train.NonFiniteLossError,
              inference.InputError)
  try:
    if _MODE.value == 'train':
      train.train_and_evaluate(config, workdir_path)
      command = ' '.join(['python -m sentiment_jax.main'] + [
          a for a in sys.argv[1:] if not a.startswith(('--mode', '--workdir'))
      ] + [f'--workdir={workdir_path}'])
      evaluate.report_after_training(config, workdir_path, command)
    elif _MODE.value == 'eval':
      evaluate.evaluate(config, workdir_path, _EVAL_SPLIT.value)
    else:
      predict.predict(config, workdir_path, _TEXT.value, _INPUT_FILE.value,
                      _OUTPUT_FILE.value)
  except expected as e:
    sys.exit(f'error: {e}')
  except KeyboardInterrupt:
    sys.exit('interrupted; run the same command again to resume')


def main() -> None:
  app.run(run)


if __name__ == '__main__':
  main()
