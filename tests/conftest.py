"""Shared fixtures: a learnable synthetic CSV and a trained tiny run.

Training through the CLI costs ~20 s, so the runs other tests read are
session-scoped; tests that change a workdir work on a copy. Helpers live in
`helpers.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import check_ok, run_cli, sentiment_rows, train_args, write_csv


@pytest.fixture(scope='session')
def sentiment_csv(tmp_path_factory) -> Path:
  """400 rows: 320 train / 40 validation / 40 test after the 10% hold-outs."""
  path = tmp_path_factory.mktemp('data') / 'sentiment.csv'
  return write_csv(path, sentiment_rows(400))


@pytest.fixture(scope='session')
def trained_run(tmp_path_factory, sentiment_csv) -> Path:
  """An uninterrupted tiny training run. Read-only: copy it to change it."""
  workdir = tmp_path_factory.mktemp('runs') / 'trained'
  result = check_ok(run_cli(*train_args(workdir, sentiment_csv)))
  (workdir.parent / 'trained.stdout').write_text(result.stdout)
  return workdir
