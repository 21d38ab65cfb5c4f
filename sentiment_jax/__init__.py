"""sentiment_jax: a Flax transformer sentiment classifier for movie reviews.

The Python API is one call, `sentiment_jax.load(workdir)`, which returns the
trained run's `inference.Predictor`:

    import sentiment_jax
    predictor = sentiment_jax.load('runs/base')
    predictor.predict('It was not bad at all.')  # -> [{'label': ..., ...}]

Importing the package loads nothing heavy (JAX comes with `load`), and
changes one thing in the process: it turns off XLA:CPU's YNNPACK dot kernels
(JAX 0.10's default is `individual_dot`) by adding
`--xla_cpu_experimental_ynn_fusion_type=` to XLA_FLAGS, unless XLA_FLAGS
already sets that flag. XLA's own dot kernels made a base eval batch 1.32x
faster and a train step 1.18x in the committed `python -m review.benchmark`
run (`ours` vs `ours_ynnpack`, review/REVIEW.md). XLA reads the flag when its
CPU backend starts, so it only takes effect if the package is imported before
JAX's first computation; set the flag yourself to choose otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
  from sentiment_jax.inference import Predictor

YNNPACK_FLAG = '--xla_cpu_experimental_ynn_fusion_type'
if YNNPACK_FLAG.lstrip('-') not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' '
                             + YNNPACK_FLAG + '=').strip()


def load(workdir: str | Path) -> Predictor:
  """The trained run in `workdir` (its config, tokenizer, best checkpoint and
  fitted temperature), ready to `predict`. See `inference.load`."""
  from sentiment_jax import inference  # pylint: disable=g-import-not-at-top
  return inference.load(workdir)


__all__ = ['load']
