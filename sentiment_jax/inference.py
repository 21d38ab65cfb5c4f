"""The one way to load a trained run and score text with it: `Predictor`.

`load(workdir)` (also `sentiment_jax.load`) reads the workdir's config.json,
tokenizer and best checkpoint, so training-time tokenization is reproduced
exactly, and its `calibration.json` when a temperature has been fitted.
`load_predictor(config, workdir)` does the same with the `eval` settings of
`config`. `evaluate`, `predict`, `explain/`, `benchmark`, `serve`,
`analysis/` and `review/` all score through it. It never imports `train`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
import tokenizers

from sentiment_jax import (calibration as calibration_lib, config_checks,
                           distributed, input_pipeline, metrics, models, sharding,
                           workdir as workdir_lib)
from sentiment_jax.errors import DataError, InputError, TextTypeError

DEFAULT_TARGET_ACCURACY = 0.95  # Abstain below the confidence that reaches it.


def check_texts(texts: Sequence[str], name: str = 'texts[{i}]') -> list[str]:
  """`texts` cleaned as training cleaned them (`clean_text`).

  A non-string raises TextTypeError and a text that is empty after cleaning
  raises InputError (a ValueError), each naming the text by `name`, formatted
  with its index from 0 (`{i}`) or from 1 (`{n}`).
  """
  cleaned = []
  for i, text in enumerate(texts):
    where = name.format(i=i, n=i + 1)
    if not isinstance(text, str):
      raise TextTypeError(f'{where} is {type(text).__name__}, not str; give '
                          'each text as a string')
    cleaned.append(input_pipeline.clean_text(text))
    if not cleaned[-1]:
      raise InputError(f'{where} is empty or white space only; give '
                       'non-empty text')
  return cleaned


@dataclasses.dataclass
class Scored:
  """A split scored by a Predictor: texts, labels, and what the model said."""

  name: str
  data: input_pipeline.Split
  encoded: input_pipeline.Encoded
  logits: np.ndarray  # `[n, 2]` float32.

  @property
  def p_positive(self) -> np.ndarray:
    return metrics.p_positive(self.logits)

  def metrics(self) -> dict[str, Any]:
    return metrics.classification_metrics(logits=self.logits,
                                          labels=self.data.labels)


@dataclasses.dataclass
class Predictor:
  """The best checkpoint of a workdir with its tokenizer."""

  config: ml_collections.ConfigDict  # The run's own model and data settings.
  tokenizer: tokenizers.Tokenizer
  model: models.Classifier  # Deterministic (eval) variant.
  params: Any  # Replicated over the mesh.
  step: int  # Training step of the checkpoint.
  parallel: sharding.DataParallel
  workdir: Path
  calibration: calibration_lib.Calibration | None = None  # None: not fitted.

  def save_calibration(self, calibration: calibration_lib.Calibration
                       ) -> None:
    """Stores a fitted temperature in the workdir; predict and eval use it."""
    if workdir_lib.is_writer():
      workdir_lib.save_calibration(self.workdir, calibration)
    self.calibration = calibration

  def encode(self, texts: Sequence[str]) -> input_pipeline.Encoded:
    d = self.config.data
    return input_pipeline.encode(self.tokenizer, texts, d.max_len,
                                 d.truncation)

  def logits(self, encoded: input_pipeline.Encoded,
             progress: str | None = None,
             batch_size: int | None = None) -> np.ndarray:
    """Float32 logits `[n, 2]` in input order, in length-sorted batches of
    `batch_size` texts (the run's eval batch size unless given)."""
    return self._batched(self.parallel.eval_step, encoded, progress,
                         batch_size)

  def pooled(self, encoded: input_pipeline.Encoded,
             progress: str | None = None) -> np.ndarray:
    """The pooled representation `[n, embed]` the head reads, in input order."""
    return self._batched(self.parallel.pooled_step, encoded, progress)

  def _batched(self, step: Any, encoded: input_pipeline.Encoded,
               progress: str | None, batch_size: int | None = None
               ) -> np.ndarray:
    """`step`'s outputs for every text, in length-sorted batches."""
    d = self.config.data
    return self.parallel.logits(self.params, encoded,
                                batch_size=batch_size or d.eval_batch_size,
                                pad_multiple=d.pad_multiple, max_len=d.max_len,
                                progress=progress, step=step)

  def predict(self, texts: str | Iterable[str],
              target_accuracy: float = DEFAULT_TARGET_ACCURACY, *,
              progress: bool = False) -> list[dict[str, Any]]:
    """`--mode=predict`'s rows, one dict per text, in input order.

    Each row: `text` (cleaned as training cleaned it), `label`, `p_positive`
    (calibrated once a temperature is fitted), `p_positive_raw`, `abstain`
    (None before a temperature is fitted) and the token counts. A bare `str`
    is one text, as in a Hugging Face pipeline; `[]` gives `[]`. A
    non-string raises TextTypeError, an empty or white-space text InputError
    (a ValueError), each naming `texts[i]`. Texts are scored in
    length-sorted batches of the run's eval batch size; `progress` shows a
    bar.
    """
    if isinstance(texts, str):
      texts = [texts]
    elif isinstance(texts, (bytes, dict)) or not isinstance(texts, Iterable):
      raise TextTypeError(f'texts is {type(texts).__name__}; give a string '
                          'or a list of strings')
    texts = check_texts(list(texts))
    if not 0.5 <= target_accuracy < 1:
      raise InputError(f'target_accuracy={target_accuracy} is out of range; '
                       'give an accuracy in [0.5, 1), e.g. 0.95')
    if not texts:
      return []
    encoded = self.encode(texts)
    raw = self.logits(encoded, progress='predict' if progress else None)
    return self.rows(texts, encoded, raw, target_accuracy)

  def rows(self, texts: Sequence[str], encoded: input_pipeline.Encoded,
           raw: np.ndarray, target_accuracy: float = DEFAULT_TARGET_ACCURACY
           ) -> list[dict[str, Any]]:
    """The rows for `texts`, their encoding and raw logits `[n, 2]`.

    `p_positive` is calibrated when the run has a temperature (and equals
    `p_positive_raw` otherwise); `abstain` is None until one is fitted.
    """
    if self.calibration is None:
      calibrated, abstain = raw, [None] * len(texts)
    else:
      calibrated = self.calibration.apply(raw)
      abstain = self.calibration.abstain(raw, target_accuracy).tolist()
    return [{'text': text,
             'label': metrics.LABEL_NAMES[label],
             'p_positive': round(float(p), 6),
             'p_positive_raw': round(float(p_raw), 6),
             'abstain': skip,
             'num_tokens': int(used), 'truncated_tokens': int(full - used)}
            for text, label, p, p_raw, skip, used, full in zip(
                texts, metrics.decide(raw), metrics.p_positive(calibrated),
                metrics.p_positive(raw), abstain, encoded.lengths,
                encoded.full_lengths)]

  def splits(self) -> dict[str, input_pipeline.Split]:
    """The named splits of the run's data source (prepared by process 0)."""
    # Imported here: TFDS and scikit-learn are not needed to predict.
    from sentiment_jax import data_sources  # pylint: disable=g-import-not-at-top
    return distributed.process_0_first(
        lambda: data_sources.load_splits(self.config.data), 'data prepared')

  def train_split(self, splits: dict[str, input_pipeline.Split] | None = None
                  ) -> input_pipeline.Split:
    """The training split as the run trained on it: its `data.train_fraction`
    subset (of `splits`, loaded unless given)."""
    splits = self.splits() if splits is None else splits
    return input_pipeline.subsample(splits['train'],
                                    self.config.data.train_fraction)

  def score_split(self, name: str,
                  splits: dict[str, input_pipeline.Split] | None = None
                  ) -> Scored:
    """Scores split `name` (loading the splits unless given)."""
    splits = self.splits() if splits is None else splits
    if name not in splits:
      raise DataError(
          f'split {name!r} is not a split of {self.config.data.source}; '
          f'choose one of {sorted(splits)}')
    encoded = self.encode(splits[name].texts)
    logits = self.logits(encoded, progress=f'score {name}')
    return Scored(name, splits[name], encoded, logits)


def load(workdir: str | Path) -> Predictor:
  """The trained run in `workdir`, with the settings it was trained with.

  Everything comes from the workdir (`workdir.run_config`); raises
  WorkdirError naming the problem when it holds no trained run.
  """
  return load_predictor(workdir_lib.run_config(workdir), workdir)


def load_predictor(config: ml_collections.ConfigDict, workdir: str | Path
                   ) -> Predictor:
  """Loads the run's config, tokenizer and best checkpoint from `workdir`.

  Model and data settings come from the workdir's config.json; only the
  `eval` group comes from `config`.
  """
  workdir = workdir_lib.check_is_dir(workdir)
  config = workdir_lib.load_run_config(config, workdir)
  config_checks.validate(config, jax.device_count())
  tokenizer = workdir_lib.load_tokenizer(workdir)
  model = models.Classifier(models.TransformerConfig.from_run_config(
      config, tokenizer.get_vocab_size(),
      input_pipeline.negation_ids(tokenizer)).replace(deterministic=True))
  parallel = sharding.DataParallel(model)
  shapes = jax.eval_shape(lambda: model.init(
      jax.random.PRNGKey(0), np.zeros((1, config.data.max_len), np.int32)))
  # Restored straight onto the mesh, so every process gets its replica.
  target = {'params': jax.tree_util.tree_map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype,
                                     sharding=parallel.replicated),
      shapes['params'])}
  best = workdir_lib.checkpoint_manager(workdir, 'best', 1)
  restored = workdir_lib.restore(best, target)
  if restored is None:
    raise workdir_lib.WorkdirError(
        f'no checkpoint in {workdir}/checkpoints/best; train first with '
        '--mode=train')
  state, meta = restored
  return Predictor(config, tokenizer, model, state['params'],
                   int(meta['step']), parallel, workdir,
                   workdir_lib.load_calibration(workdir))
