"""`--mode=predict`: classify `--text` values or an `--input_file`, one JSON per text.

Each output line: `{"text", "label", "p_positive", "num_tokens",
"truncated_tokens"}`; `--output_file` gets the same lines.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import ml_collections

from sentiment_jax import attention, inference, workdir as workdir_lib
from sentiment_jax.input_pipeline import clean_text, first_non_utf8_line

InputError = inference.InputError


def read_input_file(path: str) -> list[str]:
  """Texts from a file: JSONL with a "text" field, else one text per line."""
  file = Path(path)
  if not file.is_file():
    raise InputError(f'--input_file={path}: no such file')
  try:
    lines = file.read_text(encoding='utf-8').splitlines()
  except UnicodeDecodeError:
    raise InputError(f'--input_file={path}:{first_non_utf8_line(path)}: not '
                     'valid UTF-8; re-save the file as UTF-8') from None
  numbered = [(n, line) for n, line in enumerate(lines, start=1)
              if line.strip()]
  if not numbered:
    raise InputError(f'--input_file={path}: the file has no text')
  if not numbered[0][1].lstrip().startswith('{'):
    return [line for _, line in numbered]
  texts = []
  for n, line in numbered:
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      raise InputError(f'{path}:{n}: invalid JSON ({e.msg}); use one JSON '
                       'object per line or plain text lines') from None
    if not isinstance(row, dict) or not isinstance(row.get('text'), str):
      raise InputError(f'{path}:{n}: expected an object with a "text" string')
    texts.append(row['text'])
  return texts


def check_texts(texts: Sequence[str], source: str) -> list[str]:
  """Cleans texts as training did; an empty one is an error naming it."""
  cleaned = [clean_text(t) for t in texts]
  for i, text in enumerate(cleaned):
    if not text:
      raise InputError(f'{source} #{i + 1} is empty; give non-empty text')
  return cleaned


def predict(config: ml_collections.ConfigDict, workdir: str,
            texts: Sequence[str], input_file: str | None,
            output_file: str | None,
            attention_dump: attention.DumpRequest | None = None) -> list[dict]:
  """Classifies texts; prints and optionally writes one JSON object each."""
  if not texts and not input_file:
    raise InputError('nothing to predict; pass --text="..." or --input_file')
  texts = check_texts(texts, '--text')
  if input_file:
    texts += check_texts(read_input_file(input_file), input_file)
  predictor = inference.load_predictor(config, workdir)
  if attention_dump:
    attention_dump.check(predictor.model.config)
  encoded = predictor.encode(texts)
  prob = inference.p_positive(predictor.logits(encoded))
  rows = [{'text': text, 'label': 'positive' if p >= 0.5 else 'negative',
           'p_positive': round(float(p), 6), 'num_tokens': int(used),
           'truncated_tokens': int(full - used)}
          for text, p, used, full in zip(texts, prob, encoded.lengths,
                                         encoded.full_lengths)]
  lines = ''.join(json.dumps(row) + '\n' for row in rows)
  if output_file:
    try:
      workdir_lib.write_atomic(Path(output_file), lines)
    except OSError as e:
      raise InputError(f'--output_file={output_file}: cannot write '
                       f'({e.strerror})') from None
  print(lines, end='')
  if attention_dump:
    attention.dump_texts(predictor, texts, attention_dump)
  return rows
