"""Best-accuracy config: longer reviews and one more epoch than base.

base.py keeps the 10-minute bound; this one trades time for accuracy
(see README, "Results", for its measured time and accuracy).
"""

import ml_collections

from configs import base


def get_config() -> ml_collections.ConfigDict:
  config = base.get_config()
  config.data.max_len = 384  # Longer reviews: 256 truncates 41% of them.
  config.train.num_epochs = 3  # Validation accuracy still rose in base's last epoch.
  return config
