"""`--mode=predict`: classify `--text` values or an `--input_file`, one JSON per text.

Each output line: `{"text", "label", "p_positive", "p_positive_raw",
"abstain", "num_tokens", "truncated_tokens"}`; `--output_file` gets the same
lines. `p_positive` is calibrated and `abstain` is true below the confidence
that reached `--target_accuracy` on validation, once `analysis.main` has
fitted the run's temperature; before that `abstain` is null. Plain predict
loads no plotting or training code; `--attention_dump` adds `explain/`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import ml_collections

from sentiment_jax import inference, jsonl, workdir as workdir_lib
from sentiment_jax.errors import InputError
from sentiment_jax.explain import request as explain_request


def read_input_file(path: str) -> list[str]:
  """Texts from a file: JSONL with a "text" field, else one text per line."""
  numbered = jsonl.read_lines(path, InputError)
  if not numbered:
    raise InputError(f'--input_file={path}: the file has no text')
  if not numbered[0][1].lstrip().startswith('{'):
    return [line for _, line in numbered]
  texts = []
  for number, row in jsonl.parse(path, numbered, InputError):
    if not isinstance(row.get('text'), str):
      raise InputError(f'{path}:{number}: expected an object with a "text" '
                       'string')
    texts.append(row['text'])
  return texts


def predict(config: ml_collections.ConfigDict, workdir: str,
            texts: Sequence[str], input_file: str | None,
            output_file: str | None,
            attention_dump: explain_request.DumpRequest | None = None,
            target_accuracy: float = inference.DEFAULT_TARGET_ACCURACY
            ) -> list[dict]:
  """Classifies texts; prints and optionally writes one JSON object each."""
  if not 0.5 <= target_accuracy < 1:
    raise InputError(f'--target_accuracy={target_accuracy} is out of range; '
                     'give an accuracy in [0.5, 1), e.g. 0.95')
  if not texts and not input_file:
    raise InputError('nothing to predict; pass --text="..." or --input_file')
  texts = list(texts)
  file_texts = read_input_file(input_file) if input_file else []
  # Checked before the model loads, so a bad text fails at once; the
  # predictor cleans the raw texts itself, as the Python API does.
  cleaned = (inference.check_texts(texts, '--text #{n}') +
             inference.check_texts(file_texts, f'{input_file} #{{n}}'))
  texts += file_texts
  predictor = inference.load_predictor(config, workdir)
  if attention_dump:
    attention_dump.check(predictor.model.config)
  rows = predictor.predict(texts, target_accuracy)
  if workdir_lib.is_writer():
    if predictor.calibration is None:
      print(f'note: {workdir} has no fitted temperature, so p_positive is raw '
            'and abstain is null; fit one with python -m analysis.main '
            f'--workdir={workdir} --studies=calibration', file=sys.stderr)
    lines = ''.join(json.dumps(row) + '\n' for row in rows)
    if output_file:
      try:
        workdir_lib.write_atomic(Path(output_file), lines)
      except OSError as e:
        raise InputError(f'--output_file={output_file}: cannot write '
                         f'({e.strerror})') from None
    print(lines, end='')
  if attention_dump:
    # Imported here: figures and pages need matplotlib and Jinja2, which a
    # plain predict does not load.
    from sentiment_jax.explain import dump  # pylint: disable=g-import-not-at-top
    dump.dump_texts(predictor, cleaned, attention_dump)
  return rows
