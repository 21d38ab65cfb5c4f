"""`--mode=eval`: metrics, error analysis, plots and a TF-IDF baseline on a split.

Writes `eval_<split>.json`, `errors_<split>.jsonl` (most confident mistakes),
`roc_<split>.png` and `confusion_<split>.png` to the workdir, and prints a table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import ml_collections
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from sentiment_jax import (inference, input_pipeline, metrics, plots,
                           workdir as workdir_lib)
from sentiment_jax.explain import dump as explain_dump
from sentiment_jax.explain import request as explain_request


def tfidf_baseline(train: input_pipeline.Split, split: input_pipeline.Split
                   ) -> dict[str, object]:
  """TF-IDF (1-2 grams) + logistic regression fit on train, scored on split."""
  start = time.perf_counter()
  vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
  features = vectorizer.fit_transform(train.texts)
  # C chosen on the validation split from {3, 10, 30, 100}.
  classifier = LogisticRegression(C=30.0, max_iter=2000)
  classifier.fit(features, train.labels)
  # Logits [0, margin] give softmax P(positive) = predict_proba's sigmoid.
  margin = classifier.decision_function(vectorizer.transform(split.texts))
  logits = np.stack([np.zeros_like(margin), margin], axis=1)
  result = metrics.classification_metrics(logits=logits, labels=split.labels)
  result['fit_seconds'] = time.perf_counter() - start
  return result


def confident_errors(scored: inference.Scored, count: int,
                     excerpt_chars: int = 300) -> list[dict]:
  """The `count` mistakes with the largest margin for the wrong label."""
  chosen = metrics.confident_examples(scored.logits, scored.data.labels, count,
                                      mistakes_share=1.0)
  prob = scored.p_positive
  return [{'index': i, 'label': int(scored.data.labels[i]),
           'p_positive': float(prob[i]),
           'text': scored.data.texts[i][:excerpt_chars]}
          for i, group in chosen if group == 'confident_mistake']


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
             attention_dump: explain_request.DumpRequest | None = None
             ) -> dict:
  """Evaluates the best checkpoint on `split`; returns and writes the report.

  Every process scores (the forward pass is collective); process 0 writes.
  """
  workdir = Path(workdir)
  predictor = inference.load_predictor(config, workdir)
  if attention_dump:  # Fail on a bad request before the long evaluation.
    attention_dump.check(predictor.model.config)
  config = predictor.config
  splits = predictor.splits()
  start = time.perf_counter()
  scored = predictor.score_split(split, splits)
  seconds = time.perf_counter() - start
  report = {
      'split': split,
      'checkpoint_step': predictor.step,
      'metrics': scored.metrics(),
      'accuracy_by_length': metrics.accuracy_by_length(
          scored.logits, scored.data.labels, scored.encoded.full_lengths),
      'num_truncated': scored.encoded.num_truncated,
      'eval_seconds': seconds,
  }
  if workdir_lib.is_writer():
    if config.eval.baseline if baseline is None else baseline:
      # Not a collective, so only the process that reports fits it.
      train_split = input_pipeline.subsample(splits['train'],
                                             config.data.train_fraction)
      report['baseline'] = tfidf_baseline(train_split, scored.data)
    workdir_lib.write_atomic(workdir / f'eval_{split}.json',
                             json.dumps(report, indent=2))
    errors = confident_errors(scored, config.eval.num_errors)
    workdir_lib.write_atomic(workdir / f'errors_{split}.jsonl',
                             ''.join(json.dumps(e) + '\n' for e in errors))
    plots.roc_and_confusion(scored.logits, scored.data.labels, split, workdir)
    print(_format_table(report))
  if attention_dump:
    explain_dump.dump_eval(predictor, scored, attention_dump)
  return report


def report_after_training(config: ml_collections.ConfigDict,
                          workdir: str | Path, command: str) -> None:
  """Scores the best checkpoint on test and prints the commands to run next.

  `command` is the training command without `--mode`, to extend with modes.
  """
  evaluate(config, workdir, 'test', baseline=False)
  if workdir_lib.is_writer():
    print(f'\nartefacts in {workdir}/: checkpoints/, tokenizer.json, '
          'config.json, metrics.jsonl, tensorboard/, curves.png, '
          'eval_test.json')
    print('next:')
    print(f'  {command} --mode=eval [--eval_split=rotten_tomatoes]')
    print(f'  {command} --mode=predict --text="This movie was amazing!"')
