"""The Python API: `sentiment_jax.load(workdir).predict(texts)` is `--mode=predict`."""

import json
import subprocess
import sys

import pytest

import sentiment_jax
from helpers import PREDICT_TEXTS, REPO, check_ok, close, run_cli
from sentiment_jax import errors

TEXTS = PREDICT_TEXTS


@pytest.fixture(scope='module')
def predictor(trained_run):
  return sentiment_jax.load(trained_run)


def test_rows_equal_the_cli_without_a_config(predictor, trained_run):
  # No --config: eval and predict read the run's own config.json.
  cli = check_ok(run_cli(f'--workdir={trained_run}', '--mode=predict',
                         *[f'--text={t}' for t in TEXTS]))
  expected = [json.loads(line) for line in cli.stdout.splitlines()]
  assert predictor.predict(TEXTS) == [close(row) for row in expected]
  assert predictor.predict(TEXTS)[2]['text'] == 'the plot was great'


def test_a_string_is_one_text_and_an_empty_list_gives_none(predictor):
  (row,) = predictor.predict('terrible and dull')
  assert row == predictor.predict(['terrible and dull'])[0]
  assert predictor.predict([]) == []
  assert predictor.predict(t for t in TEXTS[:2]) == predictor.predict(
      TEXTS[:2])


@pytest.mark.parametrize('texts, error, message', [
    ([''], ValueError, r'texts\[0\] is empty'),
    (['fine', ' \n\t'], ValueError, r'texts\[1\] is empty or white space'),
    (['fine', '<br />'], ValueError, r'texts\[1\] is empty'),
    ([None], TypeError, r'texts\[0\] is NoneType, not str'),
    (['fine', 3], TypeError, r'texts\[1\] is int'),
    (None, TypeError, 'texts is NoneType'),
    (b'bytes', TypeError, 'texts is bytes'),
])
def test_bad_texts_raise_naming_their_index(predictor, texts, error, message):
  with pytest.raises(error, match=message) as raised:
    predictor.predict(texts)
  assert isinstance(raised.value, errors.UserError)


def test_an_out_of_range_target_is_refused(predictor):
  with pytest.raises(ValueError, match='target_accuracy=1.5'):
    predictor.predict(['fine'], target_accuracy=1.5)


def test_load_refuses_what_is_not_a_trained_run(tmp_path):
  with pytest.raises(errors.WorkdirError, match='does not exist'):
    sentiment_jax.load(tmp_path / 'missing')
  (tmp_path / 'file').write_text('')
  with pytest.raises(errors.WorkdirError, match='is a file'):
    sentiment_jax.load(tmp_path / 'file')
  with pytest.raises(errors.WorkdirError, match='no trained run'):
    sentiment_jax.load(tmp_path)


def test_importing_the_package_loads_no_jax():
  code = ('import sys, sentiment_jax\n'
          'print(sorted(m for m in ("jax", "flax", "orbax.checkpoint") '
          'if m in sys.modules))')
  result = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          check=True)
  assert result.stdout.strip() == '[]'
