"""A shrunk config that trains in seconds: for tests and smoke runs."""

import ml_collections

from configs import base


def get_config() -> ml_collections.ConfigDict:
  config = base.get_config()
  config.data.train_fraction = 0.02  # About 400 training reviews.
  config.data.vocab_size = 500  # Small vocabulary: tokenizer trains in a blink.
  config.data.max_len = 64  # Short sequences.
  config.data.batch_size = 16  # Small global batch (divisible by 2 devices).
  config.data.eval_batch_size = 32  # Small eval batch.
  config.data.pad_multiple = 16  # Finer padding for short sequences.
  config.data.sort_chunk_batches = 4  # Small chunks for small data.
  config.model.num_layers = 1  # One block.
  config.model.num_heads = 2  # Two heads of 16.
  config.model.embed_dim = 32  # Narrow residual stream.
  config.model.mlp_dim = 64  # Narrow MLP.
  config.model.dropout_rate = 0.1  # Dropout on, so tests exercise it.
  config.model.ngram_buckets = 0  # Tokens only; tests turn n-grams on themselves.
  config.model.ngram_skip_negated = False  # No n-grams to leave out.
  # Base's negation rules, and the contrast rule base keeps off, so tests exercise both.
  config.model.contrast_scope = True  # What "but" overrules enters scaled by a gain from 0.
  config.train.num_epochs = 2  # Two passes.
  config.train.log_every_steps = 5  # Log often.
  config.train.checkpoint_every_steps = 5  # Checkpoint often (for the resume test).
  config.train.patience = 0  # Never stop early.
  config.eval.num_errors = 5  # Few error examples.
  config.eval.baseline = False  # Skip the TF-IDF fit.
  return config
