"""Command line: `python -m sentiment_jax.main --config=configs/base.py [--mode=...]`.

Short absl glue in the style of the Flax examples: parse flags, start JAX's
distributed runtime if asked, and call one function per mode. Eval and
predict with `--workdir` and no `--config` use the run's own config.json.
Expected failures (`errors.UserError`) are printed as one line with a
non-zero exit.
"""

import os
import sys
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from sentiment_jax import hugepages

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Config file, e.g. configs/base.py; --mode=eval and '
    'predict default to the --workdir\'s own config.json.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None,
                               'Run directory; default runs/<config name>.')
_MODE = flags.DEFINE_enum(
    'mode', 'train', ['train', 'eval', 'predict', 'pretrain'],
    'What to do; pretrain = masked-token pretraining of the encoder, for '
    '--config.train.init_from.')
_EVAL_SPLIT = flags.DEFINE_string(
    'eval_split', 'test', '--mode=eval: test, validation, train, '
    'rotten_tomatoes, or cad_dev / cad_test (counterfactual pairs).')
_TEXT = flags.DEFINE_multi_string('text', [], 'Text to classify (repeatable).')
_INPUT_FILE = flags.DEFINE_string(
    'input_file', None, 'File to classify: one text per line, or JSONL with '
    'a "text" field.')
_OUTPUT_FILE = flags.DEFINE_string('output_file', None,
                                   'Also write the predictions (JSONL) here.')
_TARGET_ACCURACY = flags.DEFINE_float(
    'target_accuracy', 0.95, '--mode=predict: abstain below the calibrated '
    'confidence at which validation accuracy reached this.')
_DUMP = flags.DEFINE_string(
    'attention_dump', None, 'With --mode=predict or eval: write attention '
    'figures, rollout, importance scores and an offline page per text here.')
_DUMP_EXAMPLES = flags.DEFINE_integer(
    'attention_examples', 20, '--mode=eval: texts to dump, half the most '
    'confident mistakes and half the most confident correct predictions.')
_DUMP_LAYERS = flags.DEFINE_list('attention_layers', None,
                                 'Layers (from 0) the figures show; all if unset.')
_DUMP_HEADS = flags.DEFINE_list('attention_heads', None,
                                'Heads (from 0) the figures show; all if unset.')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'Multi-process: HOST:PORT of process 0.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None,
                                      'Multi-process: how many processes.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None,
                                   'Multi-process: this process, from 0.')
_DISTRIBUTED = flags.DEFINE_bool(
    'distributed', False, 'Multi-process with the settings detected from the '
    'cluster (SLURM, Cloud TPU, ...): jax.distributed.initialize().')


def run(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # Orbax and TFDS log every file.
  config, mode = _CONFIG.value, _MODE.value
  if config is None and (mode in ('train', 'pretrain') or not _WORKDIR.value):
    sys.exit('error: --config is required (e.g. --config=configs/base.py); '
             '--mode=eval and predict may pass --workdir of a trained run '
             'instead')
  workdir = _WORKDIR.value or os.path.join('runs', Path(
      flags.FLAGS['config'].config_filename.split(':')[0]).stem)
  # Heavy imports after flag parsing, so --help and flag errors are instant.
  from sentiment_jax import distributed, errors, xla_cache  # pylint: disable=g-import-not-at-top
  from sentiment_jax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  from sentiment_jax.explain.request import DumpRequest  # pylint: disable=g-import-not-at-top
  xla_cache.enable()
  try:
    if config is None:
      config = workdir_lib.run_config(workdir)
    distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value,
                           _PROCESS_ID.value, _DISTRIBUTED.value)
    dump = _DUMP.value and DumpRequest(Path(_DUMP.value), _DUMP_LAYERS.value,
                                       _DUMP_HEADS.value, _DUMP_EXAMPLES.value)
    if dump and mode in ('train', 'pretrain'):
      raise errors.InputError('--attention_dump needs --mode=predict or eval')
    if mode == 'pretrain':
      from sentiment_jax import pretrain  # pylint: disable=g-import-not-at-top
      pretrain.pretrain(config, workdir)
    elif mode == 'train':
      from sentiment_jax import evaluate, train  # pylint: disable=g-import-not-at-top
      train.train_and_evaluate(config, workdir)
      # The next commands run in one process: no mode or process flags.
      evaluate.report_after_training(config, workdir, ' '.join(
          ['python -m sentiment_jax.main'] + [
              a for a in sys.argv[1:] if not a.startswith(
                  ('--mode', '--coordinator_address', '--num_processes',
                   '--process_id', '--distributed'))]))
    elif mode == 'eval':
      from sentiment_jax import evaluate  # pylint: disable=g-import-not-at-top
      if _EVAL_SPLIT.value in evaluate.CAD_SPLITS:
        if dump:
          raise errors.InputError('--attention_dump is not supported with '
                                  f'--eval_split={_EVAL_SPLIT.value}')
        evaluate.evaluate_pairs(config, workdir, _EVAL_SPLIT.value)
      else:
        evaluate.evaluate(config, workdir, _EVAL_SPLIT.value,
                          attention_dump=dump)
    else:
      from sentiment_jax import predict  # pylint: disable=g-import-not-at-top
      predict.predict(config, workdir, _TEXT.value, _INPUT_FILE.value,
                      _OUTPUT_FILE.value, attention_dump=dump,
                      target_accuracy=_TARGET_ACCURACY.value)
  except errors.UserError as e:
    sys.exit(f'error: {e}')
  except KeyboardInterrupt:
    sys.exit('interrupted; run the same command again to resume')


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, with config-file errors as one line instead of a traceback.

  A config file that is missing or has a syntax error, or an override naming
  an unknown field, raises while the flags are parsed.
  """
  try:
    argv = app.parse_flags_with_usage(argv)
  except (AttributeError, KeyError) as e:
    # ml_collections wraps a KeyError whose message is the field's repr and
    # a suggestion on the next line.
    while e.args and isinstance(e.args[0], BaseException):
      e = e.args[0]
    field, *hint = [line.strip().strip("'") for line in
                    str(e.args[0] if e.args else e).splitlines()]
    sys.exit(f'error: --config has no field {field!r}' +
             (f'. {hint[0]}' if hint else '') + '; check the --config.* '
             'overrides against the config file')
  except (OSError, SyntaxError, TypeError, ValueError) as e:
    first_line = (str(e).splitlines() or [type(e).__name__])[0]
    sys.exit(f'error: --config: {type(e).__name__}: {first_line}; check the '
             'config file and the --config.* overrides')
  if _CONFIG.value is None:
    return argv  # Eval or predict from a workdir's config (checked in run).
  try:
    _CONFIG.value.to_dict()  # A file that failed to load raises on first use.
  except OSError:
    sys.exit(f'error: --config={flags.FLAGS["config"].config_filename} could '
             'not be loaded (no such file?); pass a config file such as '
             'configs/base.py')
  return argv


if __name__ == '__main__':
  hugepages.restart_with_huge_pages()
  app.run(run, flags_parser=parse_flags)
