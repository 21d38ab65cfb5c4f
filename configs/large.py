"""Longer reviews and one more epoch than base, for accuracy over time.

base.py keeps the 10-minute bound. This config takes about 3x its time; the
README's "Results" has its measured accuracy (within noise of base).
"""

import ml_collections

from configs import base


def get_config() -> ml_collections.ConfigDict:
  config = base.get_config()
  config.data.max_len = 384  # Longer reviews: 256 truncates 41% of them.
  config.train.num_epochs = 3  # Validation accuracy still rose in base's last epoch.
  return config
