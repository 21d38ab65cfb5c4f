"""The README's Python snippet runs as written, and the docs keep their shape."""

import re
import subprocess
import sys

from helpers import REPO, cli_env

PARTS = ('sentiment_jax', 'analysis', 'review', 'scaling')


def python_snippet() -> str:
  """The one ```python block of the README's 'Classify your own text'."""
  section = REPO.joinpath('README.md').read_text().split(
      '## Classify your own text')[1].split('\n## ')[0]
  (snippet,) = re.findall(r'```python\n(.*?)```', section, re.S)
  return snippet


def test_the_python_snippet_runs_as_written(trained_run, tmp_path):
  (tmp_path / 'runs').mkdir()
  (tmp_path / 'runs' / 'base').symlink_to(trained_run)
  # From a directory outside the repository, as a user's script would run.
  result = subprocess.run([sys.executable, '-c', python_snippet()],
                          cwd=tmp_path, env=cli_env(),
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  lines = result.stdout.splitlines()
  assert len(lines) == 3, result.stdout
  for line in lines[:2]:
    label, p_positive, abstain = line.split()
    assert label in ('positive', 'negative') and 0 <= float(p_positive) <= 1
    assert abstain == 'None'  # The tiny run has no fitted temperature.
  assert lines[2] in ('positive', 'negative')


def test_the_readme_is_short_and_every_part_has_its_own():
  assert len(REPO.joinpath('README.md').read_text().split()) <= 1500
  for part in PARTS:
    text = REPO.joinpath(part, 'README.md').read_text()
    assert len(text.split()) <= 2500, part
