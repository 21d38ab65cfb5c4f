"""The commands restart once with glibc's huge-page tunable, unless it is set."""

import os
import sys

import pytest

from sentiment_jax import hugepages


@pytest.mark.parametrize('tunables, restarted_with', [
    (None, 'glibc.malloc.hugetlb=1'),
    ('glibc.malloc.arena_max=2',
     'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1'),
    ('glibc.malloc.hugetlb=0', None)])
def test_the_command_restarts_once_asking_for_huge_pages(
    monkeypatch, tunables, restarted_with):
  calls = []
  monkeypatch.setattr(os, 'execv', lambda path, argv: calls.append(
      (path, argv, os.environ['GLIBC_TUNABLES'])))
  monkeypatch.setenv('GLIBC_TUNABLES', tunables or '')  # Undone after.
  if tunables is None:
    monkeypatch.delenv('GLIBC_TUNABLES')
  hugepages.restart_with_huge_pages()
  if restarted_with is None:
    assert not calls
  else:
    assert calls == [(sys.executable, sys.orig_argv, restarted_with)]
