"""A workdir never silently changes a run: refused fields, declined saves, torn logs."""

import importlib
import json

import numpy as np
import pytest

from configs import tiny
from sentiment_jax import config_checks, errors, jsonl, workdir


def changed(value):
  """Another value of the same type, valid or not (only compared here)."""
  if isinstance(value, bool):
    return not value
  if isinstance(value, (int, float)):
    return value + 1 if value < 1 or isinstance(value, int) else value / 2
  return value + '_other'


@pytest.mark.parametrize('field', workdir.TRAJECTORY_FIELDS)
def test_resuming_with_another_trajectory_field_is_refused(tmp_path, field):
  config = tiny.get_config()
  workdir.prepare(config, tmp_path)
  group, name = field.split('.')
  old = config[group][name]
  new = changed(old)
  config[group][name] = new
  with pytest.raises(errors.WorkdirError) as raised:
    workdir.check_compatible(config, tmp_path)
  message = str(raised.value)
  assert f'{field}={old!r}' in message and f'has {new!r}' in message
  assert 'new --workdir' in message


def test_fields_that_do_not_change_the_run_may_change(tmp_path):
  config = tiny.get_config()
  workdir.prepare(config, tmp_path)
  config.train.log_every_steps += 1
  config.train.keep_checkpoints += 1
  config.data.eval_batch_size *= 2
  config.eval.num_errors += 1
  workdir.check_compatible(config, tmp_path)  # No error.


def test_a_field_the_saved_run_predates_is_not_compared(tmp_path):
  config = tiny.get_config()
  workdir.prepare(config, tmp_path)
  saved = json.loads((tmp_path / 'config.json').read_text())
  del saved['train']['patience']
  (tmp_path / 'config.json').write_text(json.dumps(saved))
  config.train.patience = 7
  workdir.check_compatible(config, tmp_path)


def test_checkpoint_trajectory_mismatch_names_the_field(tmp_path):
  config = tiny.get_config()
  saved = workdir.trajectory(config, steps_per_epoch=20, total_steps=40)
  assert saved['steps_per_epoch'] == 20 and saved['data.batch_size'] == 16
  workdir.check_trajectory(saved, dict(saved), tmp_path)
  with pytest.raises(errors.WorkdirError, match='total_steps=40 .* has 60'):
    workdir.check_trajectory(saved, {**saved, 'total_steps': 60}, tmp_path)


def test_a_declined_save_raises(tmp_path):
  manager = workdir.checkpoint_manager(tmp_path, 'latest', 3)
  state = {'w': np.ones(3, np.float32)}
  workdir.save(manager, 5, state, {'note': 'five'})
  workdir.save(manager, 5, state, {'note': 'again'})  # Same step: a no-op.
  with pytest.raises(errors.WorkdirError, match='declined to save step 3'):
    workdir.save(manager, 3, state, {'note': 'older'})
  assert manager.all_steps() == [5]


def test_jsonl_drops_only_a_torn_last_line(tmp_path):
  path = tmp_path / 'log.jsonl'
  path.write_text('{"step": 1}\n{"step": 2}\n{"step": 3, "lo')
  assert [r['step'] for _, r in jsonl.read(path, errors.WorkdirError,
                                          torn_tail_ok=True)] == [1, 2]
  with pytest.raises(errors.WorkdirError, match='log.jsonl:3: invalid JSON'):
    jsonl.read(path, errors.WorkdirError)
  path.write_text('{"step": 1}\n{"step": 2, "lo\n{"step": 3}\n')
  with pytest.raises(errors.WorkdirError, match='log.jsonl:2: invalid JSON'):
    jsonl.read(path, errors.WorkdirError, torn_tail_ok=True)


@pytest.mark.parametrize('name', ['base', 'tiny', 'large', 'best'])
def test_every_shipped_config_validates(name):
  module = importlib.import_module(f'configs.{name}')
  config_checks.validate(module.get_config(), num_devices=1)


@pytest.mark.parametrize('field, value', [('ngram_max', 1),
                                          ('ngram_buckets', -1)])
def test_a_bad_ngram_setting_is_refused_with_its_value(field, value):
  config = tiny.get_config()
  config.model[field] = value
  with pytest.raises(errors.ConfigError, match=f'model.{field}={value}'):
    config_checks.validate(config, num_devices=1)


@pytest.mark.parametrize('field, value', [('dropout_rate', 0.001),
                                          ('attention_dropout_rate', 0.999)])
def test_a_dropout_rate_the_8_bit_mask_cannot_draw_is_refused(field, value):
  config = tiny.get_config()
  config.model[field] = value
  with pytest.raises(errors.ConfigError, match=f'model.{field}={value}'):
    config_checks.validate(config, num_devices=1)


def test_a_run_saved_before_a_default_changed_keeps_what_it_did(tmp_path):
  """A config.json from before negation scope and the counterfactual pairs
  existed loads as the run trained: both off, though base turns them on."""
  config = tiny.get_config().to_dict()
  del config['model']['negation_scope'], config['data']['counterfactual_copies']
  (tmp_path / 'config.json').write_text(json.dumps(config))
  loaded = workdir.run_config(tmp_path)
  assert loaded.model.negation_scope is False
  assert loaded.data.counterfactual_copies == 0
  assert tiny.get_config().model.negation_scope  # Today's default differs.
  merged = workdir.load_run_config(tiny.get_config(), tmp_path)
  assert merged.model.negation_scope is False
