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
_ATTENTION_DUMP = flags.DEFINE_string(
    'attention_dump', None,
    'With --mode=predict or eval: write attention heatmaps, rollout, an offline '
    'HTML page and faithfulness scores for each text into this directory.')
_ATTENTION_EXAMPLES = flags.DEFINE_integer(
    'attention_examples', 20,
    'With --mode=eval: texts to dump, half the most confident mistakes and '
    'half the most confident correct predictions.')
_ATTENTION_LAYERS = flags.DEFINE_list(
    'attention_layers', None,
    'Comma list of layers (from 0) the dump figures show; default all.')
_ATTENTION_HEADS = flags.DEFINE_list(
    'attention_heads', None,
    'Comma list of heads (from 0) the dump figures show; default all.')
flags.mark_flag_as_required('config')


def default_workdir() -> str:
  """`runs/<config file stem>`, so the bare command needs no --workdir."""
  config_path = flags.FLAGS['config'].config_filename
  return os.path.join('runs', Path(config_path.split(':')[0]).stem)


def run(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  # Heavy imports after flag parsing, so --help and flag errors are instant.
  from sentiment_jax import (attention, evaluate, inference, input_pipeline,
                             predict, train, workdir)
  import jax

  if not flags.FLAGS['verbosity'].present:
    # Orbax and TFDS log every file operation at INFO; -v 0 brings them back.
    logging.set_verbosity(logging.WARNING)
  config = _CONFIG.value
  try:
    config.to_dict()  # A config file that failed to load raises on first use.
  except OSError:
    sys.exit(f'error: --config={flags.FLAGS["config"].config_filename} could '
             'not be loaded (no such file?); pass a config file such as '
             'configs/base.py')
  workdir_path = _WORKDIR.value or default_workdir()
  print(f'JAX {jax.__version__}, process {jax.process_index() + 1}/'
        f'{jax.process_count()}, devices: {jax.devices()}', file=sys.stderr)
  expected = (input_pipeline.DataError, workdir.WorkdirError,
              workdir.ConfigError, train.NonFiniteLossError,
              inference.InputError)
  dump = attention.DumpRequest(
      Path(_ATTENTION_DUMP.value), _ATTENTION_LAYERS.value,
      _ATTENTION_HEADS.value,
      _ATTENTION_EXAMPLES.value) if _ATTENTION_DUMP.value else None
  try:
    if dump and _MODE.value == 'train':
      raise inference.InputError(
          '--attention_dump needs --mode=predict or --mode=eval')
    if _MODE.value == 'train':
      train.train_and_evaluate(config, workdir_path)
      command = ' '.join(['python -m sentiment_jax.main'] + [
          a for a in sys.argv[1:] if not a.startswith(('--mode', '--workdir'))
      ] + [f'--workdir={workdir_path}'])
      evaluate.report_after_training(config, workdir_path, command)
    elif _MODE.value == 'eval':
      evaluate.evaluate(config, workdir_path, _EVAL_SPLIT.value,
                        attention_dump=dump)
    else:
      predict.predict(config, workdir_path, _TEXT.value, _INPUT_FILE.value,
                      _OUTPUT_FILE.value, attention_dump=dump)
  except expected as e:
    sys.exit(f'error: {e}')
  except KeyboardInterrupt:
    sys.exit('interrupted; run the same command again to resume')


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, with config-file errors as one line instead of a traceback.

  A config file with a syntax error, or an override naming an unknown field,
  raises while the flags are parsed, before `run` could catch it.
  """
  try:
    return app.parse_flags_with_usage(argv)
  except (OSError, SyntaxError, AttributeError, KeyError, TypeError,
          ValueError) as e:
    first_line = (str(e).splitlines() or [type(e).__name__])[0]
    sys.exit(f'error: --config: {type(e).__name__}: {first_line}; check the '
             'config file and the --config.* overrides')


def main() -> None:
  app.run(run, flags_parser=parse_flags)


if __name__ == '__main__':
  main()
