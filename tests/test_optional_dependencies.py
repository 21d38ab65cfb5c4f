"""Tests that need PyTorch or Chromium skip without them, except under CI."""

import pytest

from helpers import import_or_skip, require


def test_a_missing_dependency_skips_locally_and_fails_under_ci(monkeypatch):
  monkeypatch.delenv('CI', raising=False)
  with pytest.raises(pytest.skip.Exception, match='needs X: install X'):
    require(False, 'needs X: install X')
  monkeypatch.setenv('CI', 'true')
  with pytest.raises(pytest.fail.Exception, match='needs X: install X'):
    require(False, 'needs X: install X')
  with pytest.raises(pytest.fail.Exception, match='needs a module'):
    import_or_skip('no_such_module_here', 'needs a module')
  require(True, 'needs X: install X')  # Present: nothing happens.
  assert import_or_skip('json', 'needs json').dumps([]) == '[]'
