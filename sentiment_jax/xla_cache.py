"""Where the command line keeps XLA's compiled programs between and within runs.

A base run compiles its train step once per padded length, its eval step the
same, and the model's init: about 20 s of a 5-minute run on 2 CPU cores
(review/MEASUREMENTS.md). With JAX's persistent compilation cache the next
run loads them, and within one run the test split's scoring reuses the
programs that validation compiled (the same eval step, loaded anew from the
checkpoint).
"""

import os
import sys
from pathlib import Path

import jax

# Every program is kept, not only those over JAX's default 1 s: a one-review
# predict's eval step compiles in about 0.5 s on 2 cores and loads in 0.1 s.
MIN_COMPILE_SECONDS = 0.0
# A base run writes under 1 MB. With a size limit JAX also locks each read and
# write, which processes sharing the cache (multi-process runs) need.
MAX_BYTES = 1 << 30


def default_dir() -> Path:
  """`$XDG_CACHE_HOME/sentiment_jax/xla`, or `~/.cache/sentiment_jax/xla`."""
  base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
  return Path(base) / 'sentiment_jax' / 'xla'


def enable() -> None:
  """Turns the cache on at `default_dir()`, unless the environment already
  says where (`JAX_COMPILATION_CACHE_DIR`) or says no
  (`JAX_ENABLE_COMPILATION_CACHE=false`), which JAX reads itself. A default
  directory that cannot be made leaves the cache off, with a one-line note."""
  if not jax.config.jax_enable_compilation_cache:
    return
  if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
    where = default_dir()
    try:
      where.mkdir(parents=True, exist_ok=True)
    except OSError as e:
      print(f'note: compiled programs are not cached ({where}: '
            f'{e.strerror}); set JAX_COMPILATION_CACHE_DIR to a writable '
            'directory to keep them', file=sys.stderr)
      return
    jax.config.update('jax_compilation_cache_dir', str(where))
  if 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS' not in os.environ:
    jax.config.update('jax_persistent_cache_min_compile_time_secs',
                      MIN_COMPILE_SECONDS)
  if 'JAX_COMPILATION_CACHE_MAX_SIZE' not in os.environ:
    jax.config.update('jax_compilation_cache_max_size', MAX_BYTES)
