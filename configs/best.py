"""The most accurate config measured: the transformer with a 2M x 64 table of
hashed 2- and 3-gram embeddings, 512-token reviews, dropout 0.1, 2 epochs, and
base's counterfactual pairs and negation rules (a negated word enters
reversed for three pieces, the negator silent), its n-grams negations included.

Measured on this project's 2-core AMD EPYC over seeds 42, 1 and 2
(`python -m sentiment_jax.main --config=configs/best.py
--config.train.seed=N`, then `--mode=eval`, `--eval_split=rotten_tomatoes`
and `--eval_split=cad_dev`): IMDB test 0.9079 +- 0.0020, validation
0.9113 +- 0.0005, Rotten Tomatoes 0.7492 +- 0.0044, CAD dev revisions
0.849 +- 0.016; seed 42's bare command took 19:43 wall. Without the pairs
and rules the same three seeds read IMDB test 0.9112 +- 0.0064 and CAD dev
revisions 0.533: both were adopted by the rule written before those runs
(sentiment_jax/MEASUREMENTS.md), which asked for IMDB test >= 0.9042.
"""

import ml_collections

from configs import base


def get_config() -> ml_collections.ConfigDict:
  config = base.get_config()
  # As measured: base's settings before base became one epoch of a smaller table.
  config.train.num_epochs = 2  # Passes over the training split.
  config.model.dropout_rate = 0.1  # Dropout on embeddings and residual branches.
  config.data.pad_multiple = 32  # Batches padded to a multiple of 32 tokens.
  config.model.ngram_buckets = 1 << 21  # 2M rows of hashed 2- and 3-grams.
  config.model.ngram_dim = 64  # Projected up to embed_dim.
  config.model.ngram_max = 3  # Bigrams and trigrams of pieces.
  config.data.max_len = 512  # Long reviews: 256 truncates 41% of the training reviews, 512 13%.
  config.train.eval_every_steps = 155  # Validation every half epoch; the best checkpoint is kept.
  # Base's pairs and negation rules, but as measured its n-grams keep the
  # negations (base leaves them out).
  config.model.ngram_skip_negated = False
  return config
