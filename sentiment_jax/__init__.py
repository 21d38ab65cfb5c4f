"""sentiment_jax: a Flax transformer sentiment classifier for movie reviews.

Importing the package turns off XLA:CPU's YNNPACK dot kernels (its default
since JAX 0.10 is `individual_dot`) unless XLA_FLAGS already sets
`xla_cpu_experimental_ynn_fusion_type`. Measured on the base model, XLA's
own dot kernels made an eval batch 1.32x faster and a train step 1.18x in
the committed `python -m review.benchmark` run (`ours` vs `ours_ynnpack`,
review/REVIEW.md; other runs in review/MEASUREMENTS.md).
XLA reads the flag when its CPU backend starts, so this must run before any
JAX computation; every entry point imports the package first.
"""

import os

YNNPACK_FLAG = '--xla_cpu_experimental_ynn_fusion_type'
if YNNPACK_FLAG.lstrip('-') not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' '
                             + YNNPACK_FLAG + '=').strip()
