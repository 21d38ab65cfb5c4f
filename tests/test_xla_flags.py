"""Importing sentiment_jax turns off XLA:CPU's YNNPACK dots, unless told not to."""

import subprocess
import sys

from helpers import REPO, cli_env

_PRINT_FLAGS = 'import os, sentiment_jax; print(os.environ["XLA_FLAGS"])'


def flags_after_import(xla_flags: str | None) -> str:
  env = cli_env()
  env.pop('XLA_FLAGS', None)
  if xla_flags is not None:
    env['XLA_FLAGS'] = xla_flags
  return subprocess.run([sys.executable, '-c', _PRINT_FLAGS], cwd=REPO,
                        env=env, capture_output=True, text=True,
                        check=True).stdout.strip()


def test_import_appends_the_flag_and_keeps_the_users_flags():
  assert flags_after_import(None) == (
      '--xla_cpu_experimental_ynn_fusion_type=')
  assert flags_after_import('--xla_force_host_platform_device_count=2') == (
      '--xla_force_host_platform_device_count=2 '
      '--xla_cpu_experimental_ynn_fusion_type=')


def test_a_users_own_ynnpack_setting_wins():
  own = '--xla_cpu_experimental_ynn_fusion_type=individual_dot'
  assert flags_after_import(own) == own
