"""The one JSONL reader: numbered JSON objects from a file, errors naming the line.

Used for labelled data files, `--input_file`, `metrics.jsonl` on resume and
the scaling sweep's `results.jsonl`. Callers choose the exception type so
each layer keeps its own error class.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator


def first_non_utf8_line(path: str | os.PathLike) -> int:
  """1-based number of the first line of `path` that is not valid UTF-8."""
  with open(path, 'rb') as f:
    for number, line in enumerate(f, start=1):
      try:
        line.decode('utf-8')
      except UnicodeDecodeError:
        return number
  return number


def read_text(path: str | os.PathLike, error: type[Exception]) -> str:
  """A UTF-8 text file's content; raises `error` naming the file (and line)."""
  try:
    with open(path, encoding='utf-8', newline='') as f:
      return f.read()
  except FileNotFoundError:
    raise error(f'{path}: no such file') from None
  except IsADirectoryError:
    raise error(f'{path}: is a directory, not a file') from None
  except UnicodeDecodeError:
    raise error(f'{path}:{first_non_utf8_line(path)}: not valid UTF-8; '
                're-save the file as UTF-8') from None


def read_lines(path: str | os.PathLike, error: type[Exception]
               ) -> list[tuple[int, str]]:
  """`(line number, line)` of each non-blank line of a UTF-8 text file."""
  lines = read_text(path, error).splitlines()
  return [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]


def parse(path: str | os.PathLike, numbered: list[tuple[int, str]],
          error: type[Exception], torn_tail_ok: bool = False
          ) -> Iterator[tuple[int, dict]]:
  """Yields `(line number, object)`; a bad line raises `error` naming it.

  `torn_tail_ok` drops a last line that is not valid JSON: what a process
  killed in the middle of appending leaves behind.
  """
  for position, (number, line) in enumerate(numbered):
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      if torn_tail_ok and position == len(numbered) - 1:
        return
      raise error(f'{path}:{number}: invalid JSON ({e.msg})') from None
    if not isinstance(row, dict):
      raise error(f'{path}:{number}: expected a JSON object')
    yield number, row


def read(path: str | os.PathLike, error: type[Exception],
         torn_tail_ok: bool = False) -> list[tuple[int, dict]]:
  """`(line number, object)` for each non-blank line of a JSONL file."""
  return list(parse(path, read_lines(path, error), error, torn_tail_ok))
