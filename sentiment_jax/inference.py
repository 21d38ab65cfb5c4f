"""A trained model loaded from its workdir, ready to score raw texts.

Shared by `--mode=eval`, `--mode=predict` and the analysis tools: the workdir's
tokenizer and best checkpoint reproduce training-time tokenization exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
import tokenizers

from sentiment_jax import input_pipeline, models, train, workdir as workdir_lib


class InputError(ValueError):
  """A text or input file given to the model is unusable."""


@dataclasses.dataclass
class Predictor:
  """The best checkpoint of a workdir with its tokenizer."""

  config: ml_collections.ConfigDict
  tokenizer: tokenizers.Tokenizer
  model: models.Classifier  # Deterministic (eval) variant.
  params: Any
  step: int  # Training step of the checkpoint.
  parallel: train.Parallel

  def encode(self, texts: Sequence[str]) -> input_pipeline.Encoded:
    return input_pipeline.encode(self.tokenizer, texts,
                                 self.config.data.max_len,
                                 self.config.data.truncation)

  def logits(self, encoded: input_pipeline.Encoded,
             progress: str | None = None) -> np.ndarray:
    """Float32 logits `[n, 2]` in input order."""
    d = self.config.data
    return train.predict_logits(self.parallel, self.params, encoded,
                                d.eval_batch_size, d.pad_multiple, d.max_len,
                                progress)


def p_positive(logits: np.ndarray) -> np.ndarray:
  """Softmax probability of the positive class, `[n]`, from `[n, 2]` logits."""
  return np.asarray(jax.nn.softmax(logits, axis=-1)[:, 1])


def load_predictor(config: ml_collections.ConfigDict, workdir: str | Path
                   ) -> Predictor:
  """Loads the run's config, tokenizer and best checkpoint from `workdir`.

  Model and data settings come from the workdir's config.json; only the
  `eval` group comes from `config`.
  """
  workdir = Path(workdir)
  if not workdir.is_dir():
    raise workdir_lib.WorkdirError(
        f'workdir {workdir} does not exist; train first with --mode=train or '
        'pass the --workdir of a trained run')
  config = workdir_lib.load_run_config(config, workdir)
  workdir_lib.validate(config, jax.device_count())
  tokenizer = workdir_lib.load_tokenizer(workdir)
  model = models.Classifier(
      train.model_config(config, tokenizer.get_vocab_size()).replace(
          deterministic=True))
  target = {'params': jax.eval_shape(
      lambda: model.init(jax.random.PRNGKey(0), np.zeros(
          (1, config.data.max_len), np.int32)))['params']}
  best = workdir_lib.checkpoint_manager(workdir, 'best', 1)
  restored = workdir_lib.restore(best, target)
  if restored is None:
    raise workdir_lib.WorkdirError(
        f'no checkpoint in {workdir}/checkpoints/best; train first with '
        '--mode=train')
  state, meta = restored
  parallel = train.Parallel(model)
  params = jax.device_put(state['params'], parallel.replicated)
  return Predictor(config, tokenizer, model, params, int(meta['step']),
                   parallel)
