"""`--mode=eval`: metrics, error analysis, plots and a TF-IDF baseline on a split.

Writes `eval_<split>.json`, `errors_<split>.jsonl` (most confident mistakes),
`roc_<split>.png` and `confusion_<split>.png` to the workdir, and prints a table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import matplotlib
import ml_collections
import numpy as np
from sklearn import metrics as skm
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from sentiment_jax import (attention, inference, input_pipeline,
                           workdir as workdir_lib)

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

# Review-length buckets, in tokens before truncation.
LENGTH_EDGES = (0, 128, 256, 512, 1024, np.inf)


def classification_metrics(labels: np.ndarray, prob: np.ndarray
                           ) -> dict[str, object]:
  """sklearn metrics for `[n]` 0/1 labels and `[n]` P(positive)."""
  pred = (prob >= 0.5).astype(int)
  return {
      'num_examples': int(len(labels)),
      'accuracy': skm.accuracy_score(labels, pred),
      'precision': skm.precision_score(labels, pred, zero_division=0),
      'recall': skm.recall_score(labels, pred, zero_division=0),
      'f1': skm.f1_score(labels, pred, zero_division=0),
      'auc_roc': (skm.roc_auc_score(labels, prob)
                  if len(set(labels)) == 2 else float('nan')),
      'log_loss': skm.log_loss(labels, np.clip(prob, 1e-7, 1 - 1e-7),
                               labels=[0, 1]),
      'confusion_matrix': skm.confusion_matrix(labels, pred,
                                               labels=[0, 1]).tolist(),
  }


def accuracy_by_length(labels: np.ndarray, prob: np.ndarray,
                       lengths: np.ndarray) -> list[dict]:
  """Accuracy per bucket of untruncated token length (empty buckets omitted)."""
  correct = (prob >= 0.5) == labels
  rows = []
  for low, high in zip(LENGTH_EDGES[:-1], LENGTH_EDGES[1:]):
    inside = (lengths >= low) & (lengths < high)
    if inside.any():
      rows.append({'tokens': f'{low}-{high if np.isfinite(high) else ""}',
                   'num_examples': int(inside.sum()),
                   'accuracy': float(correct[inside].mean())})
  return rows


def confident_errors(texts: list[str], labels: np.ndarray, prob: np.ndarray,
                     count: int, excerpt_chars: int = 300) -> list[dict]:
  """The `count` mistakes with the highest probability on the wrong label."""
  wrong = np.flatnonzero((prob >= 0.5) != labels)
  confidence = np.abs(prob[wrong] - 0.5)
  return [{'index': int(i), 'label': int(labels[i]),
           'p_positive': float(prob[i]), 'text': texts[i][:excerpt_chars]}
          for i in wrong[np.argsort(-confidence, kind='stable')][:count]]


def tfidf_baseline(train: input_pipeline.Split, split: input_pipeline.Split
                   ) -> dict[str, object]:
  """TF-IDF (1-2 grams) + logistic regression fit on train, scored on split."""
  start = time.perf_counter()
  vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
  features = vectorizer.fit_transform(train.texts)
  # C chosen on the validation split from {3, 10, 30, 100}.
  classifier = LogisticRegression(C=30.0, max_iter=2000)
  classifier.fit(features, train.labels)
  prob = classifier.predict_proba(vectorizer.transform(split.texts))[:, 1]
  result = classification_metrics(split.labels, prob)
  result['fit_seconds'] = time.perf_counter() - start
  return result


def plot_roc_and_confusion(labels: np.ndarray, prob: np.ndarray, split: str,
                           workdir: Path) -> None:
  fig, ax = plt.subplots(figsize=(4.5, 4.5))
  skm.RocCurveDisplay.from_predictions(labels, prob, ax=ax, name='transformer')
  ax.plot([0, 1], [0, 1], 'k:', lw=1)
  ax.set_title(f'ROC: {split}')
  fig.tight_layout()
  fig.savefig(workdir / f'roc_{split}.png', dpi=100)
  plt.close(fig)
  fig, ax = plt.subplots(figsize=(4.5, 4))
  skm.ConfusionMatrixDisplay.from_predictions(
      labels, (prob >= 0.5).astype(int), display_labels=['negative', 'positive'],
      ax=ax, colorbar=False)
  ax.set_title(f'Confusion matrix: {split}')
  fig.tight_layout()
  fig.savefig(workdir / f'confusion_{split}.png', dpi=100)
  plt.close(fig)


def _format_table(report: dict) -> str:
  names = ('accuracy', 'precision', 'recall', 'f1', 'auc_roc', 'log_loss')
  columns = [('transformer', report['metrics'])]
  if 'baseline' in report:
    columns.append(('tfidf+logreg', report['baseline']))
  lines = [f'{report["split"]} ({report["metrics"]["num_examples"]} examples, '
           f'checkpoint step {report["checkpoint_step"]})',
           f'{"metric":<12}' + ''.join(f'{n:>14}' for n, _ in columns)]
  for name in names:
    lines.append(f'{name:<12}' + ''.join(f'{c[name]:>14.4f}'
                                         for _, c in columns))
  lines.append('accuracy by review length (tokens):')
  for row in report['accuracy_by_length']:
    lines.append(f'  {row["tokens"]:>10}: {row["accuracy"]:.4f} '
                 f'({row["num_examples"]} examples)')
  return '\n'.join(lines)


def evaluate(config: ml_collections.ConfigDict, workdir: str | Path,
             split: str, baseline: bool | None = None,
             attention_dump: attention.DumpRequest | None = None) -> dict:
  """Evaluates the best checkpoint on `split`; returns and writes the report."""
  workdir = Path(workdir)
  predictor = inference.load_predictor(config, workdir)
  if attention_dump:  # Fail on a bad request before the long evaluation.
    attention_dump.check(predictor.model.config)
  config = predictor.config
  splits = input_pipeline.load_splits(config.data)
  if split not in splits:
    raise input_pipeline.DataError(
        f'--eval_split={split!r} is not a split of {config.data.source}; '
        f'choose one of {sorted(splits)}')
  data = splits[split]
  encoded = predictor.encode(data.texts)
  start = time.perf_counter()
  prob = inference.p_positive(predictor.logits(encoded, progress=f'eval {split}'))
  seconds = time.perf_counter() - start
  report = {
      'split': split,
      'checkpoint_step': predictor.step,
      'metrics': classification_metrics(data.labels, prob),
      'accuracy_by_length': accuracy_by_length(data.labels, prob,
                                               encoded.full_lengths),
      'num_truncated': encoded.num_truncated,
      'eval_seconds': seconds,
  }
  if config.eval.baseline if baseline is None else baseline:
    train_split = input_pipeline.subsample(splits['train'],
                                           config.data.train_fraction)
    report['baseline'] = tfidf_baseline(train_split, data)
  workdir_lib.write_atomic(workdir / f'eval_{split}.json',
                           json.dumps(report, indent=2))
  errors = confident_errors(data.texts, data.labels, prob,
                            config.eval.num_errors)
  workdir_lib.write_atomic(workdir / f'errors_{split}.jsonl',
                           ''.join(json.dumps(e) + '\n' for e in errors))
  plot_roc_and_confusion(data.labels, prob, split, workdir)
  print(_format_table(report))
  if attention_dump:
    attention.dump_eval(predictor, data, prob, split, attention_dump)
  return report


def report_after_training(config: ml_collections.ConfigDict,
                          workdir: str | Path, command: str) -> None:
  """Scores the best checkpoint on test and prints the commands to run next.

  `command` is the training command without `--mode`, to extend with modes.
  """
  evaluate(config, workdir, 'test', baseline=False)
  print(f'\nartefacts in {workdir}/: checkpoints/, tokenizer.json, '
        'config.json, metrics.jsonl, tensorboard/, curves.png, eval_test.json')
  print('next:')
  print(f'  {command} --mode=eval [--eval_split=rotten_tomatoes]')
  print(f'  {command} --mode=predict --text="This movie was amazing!"')
