"""The most accurate config measured: base plus hashed n-gram embeddings and
512-token reviews.

MEASURED

  python -m sentiment_jax.main --config=configs/best.py
"""

import ml_collections

from configs import base


def get_config() -> ml_collections.ConfigDict:
  config = base.get_config()
  config.model.ngram_buckets = 1 << 20  # 1M rows of hashed 2- and 3-grams.
  config.model.ngram_dim = 32  # Narrow: the dense AdamW update stays cheap.
  config.model.ngram_max = 3  # Bigrams and trigrams of pieces.
  config.data.max_len = 512  # Long reviews: 256 truncates 41% of the training reviews, 512 13%.
  config.train.eval_every_steps = 155  # Validation every half epoch; the best checkpoint is kept.
  return config
