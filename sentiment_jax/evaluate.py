"""`--mode=eval`: metrics, error analysis, plots and a TF-IDF baseline on a split.

Writes `eval_<split>.json`, `errors_<split>.jsonl` (most confident mistakes),
`roc_<split>.png` and `confusion_<split>.png` to the workdir, and prints a table.
Once the run has a fitted temperature, the report adds calibrated log loss,
Brier score and ECE beside the raw ones, and the errors carry both
probabilities. `--eval_split=cad_dev` or `cad_test` scores the
counterfactual pairs instead (`evaluate_pairs`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import ml_collections
import numpy as np

from sentiment_jax import (baseline as baseline_lib,
                           calibration as calibration_lib, data_sources,
                           inference, input_pipeline, metrics, plots,
                           workdir as workdir_lib)
from sentiment_jax.explain import dump as explain_dump
from sentiment_jax.explain import request as explain_request


def tfidf_baseline(train: input_pipeline.Split, scored: inference.Scored
                   ) -> dict[str, object]:
  """The TF-IDF baseline fit on train, scored on the same split as the
  transformer, with McNemar's test of the two (A = transformer)."""
  model = baseline_lib.TfidfBaseline(train)
  labels = scored.data.labels
  logits = model.logits(scored.data.texts)
  result = metrics.classification_metrics(logits=logits, labels=labels)
  result['fit_seconds'] = model.fit_seconds
  result['mcnemar'] = metrics.mcnemar(metrics.decide(scored.logits) == labels,
                                      metrics.decide(logits) == labels)
  return result


def calibration_report(calibration: calibration_lib.Calibration,
                       scored: inference.Scored) -> dict[str, object]:
  """Log loss, Brier and 15-bin ECE before and after temperature scaling."""
  labels = scored.data.labels
  out: dict[str, object] = {'temperature': calibration.temperature,
                            'fitted_on': calibration.fitted_on}
  for name, logits in (('raw', scored.logits),
                       ('calibrated', calibration.apply(scored.logits))):
    out[name] = {'log_loss': metrics.log_loss(logits, labels),
                 'brier': metrics.brier(logits, labels),
                 'ece_15': metrics.ece(metrics.confidence(logits),
                                       metrics.decide(logits) == labels)}
  return out


def confident_errors(scored: inference.Scored, count: int,
                     calibration: calibration_lib.Calibration | None = None,
                     excerpt_chars: int = 300) -> list[dict]:
  """The `count` mistakes with the largest margin for the wrong label."""
  chosen = metrics.confident_examples(scored.logits, scored.data.labels, count,
                                      mistakes_share=1.0)
  raw = scored.p_positive
  prob = (raw if calibration is None
          else metrics.p_positive(calibration.apply(scored.logits)))
  return [{'index': i, 'label': int(scored.data.labels[i]),
           'p_positive': float(prob[i]), 'p_positive_raw': float(raw[i]),
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
  if 'calibration' in report:
    c = report['calibration']
    lines.append(f'calibrated (T={c["temperature"]:.3f}, fitted on '
                 f'{c["fitted_on"]}): log_loss {c["calibrated"]["log_loss"]:.4f}'
                 f' (raw {c["raw"]["log_loss"]:.4f}), ECE-15 '
                 f'{c["calibrated"]["ece_15"]:.4f} (raw {c["raw"]["ece_15"]:.4f})')
  if 'baseline' in report:
    m = report['baseline']['mcnemar']
    lines.append(f'McNemar vs tfidf+logreg: transformer alone right on '
                 f'{m["a_only_correct"]}, baseline alone on '
                 f'{m["b_only_correct"]}, exact p = {m["p_value"]:.3g}')
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
  if predictor.calibration is not None:
    report['calibration'] = calibration_report(predictor.calibration, scored)
  if workdir_lib.is_writer():
    if config.eval.baseline if baseline is None else baseline:
      # Not a collective, so only the process that reports fits it.
      report['baseline'] = tfidf_baseline(predictor.train_split(splits),
                                          scored)
    workdir_lib.write_atomic(workdir / f'eval_{split}.json',
                             json.dumps(report, indent=2))
    errors = confident_errors(scored, config.eval.num_errors,
                              predictor.calibration)
    workdir_lib.write_atomic(workdir / f'errors_{split}.jsonl',
                             ''.join(json.dumps(e) + '\n' for e in errors))
    plots.roc_and_confusion(scored.logits, scored.data.labels, split, workdir)
    print(_format_table(report))
  if attention_dump:
    explain_dump.dump_eval(predictor, scored, attention_dump)
  return report


CAD_SPLITS = {'cad_dev': 'dev', 'cad_test': 'test'}  # --eval_split -> file.


def evaluate_pairs(config: ml_collections.ConfigDict, workdir: str | Path,
                   split: str) -> dict:
  """Accuracy on a counterfactual split's originals, revisions and whole
  pairs, for the run and (with `eval.baseline`) TF-IDF fitted on the same
  training split; overall, and on the pairs whose original the run did not
  train on. Writes `eval_<split>.json` and prints a table."""
  workdir = Path(workdir)
  predictor = inference.load_predictor(config, workdir)
  pairs = data_sources.load_pairs(CAD_SPLITS[split])
  halves = (pairs.originals, pairs.revisions)
  train = predictor.train_split()
  seen = set(train.texts)
  unseen = np.asarray([t not in seen for t in pairs.originals.texts])

  def scores(logits_of) -> dict[str, dict]:
    correct = [metrics.decide(logits_of(half.texts)) == half.labels
               for half in halves]
    return {'all': metrics.pair_accuracy(*correct),
            'unseen': metrics.pair_accuracy(
                *(c[unseen] for c in correct))}

  report = {'split': split, 'checkpoint_step': predictor.step,
            'num_originals_in_training_split': int((~unseen).sum()),
            'transformer': scores(lambda texts: predictor.logits(
                predictor.encode(texts), progress=f'score {split}'))}
  if workdir_lib.is_writer():
    if predictor.config.eval.baseline:
      report['baseline'] = scores(baseline_lib.TfidfBaseline(train).logits)
    workdir_lib.write_atomic(workdir / f'eval_{split}.json',
                             json.dumps(report, indent=2))
    print(_format_pairs(report))
  return report


def _format_pairs(report: dict) -> str:
  columns = [('transformer', report['transformer'])]
  if 'baseline' in report:
    columns.append(('tfidf+logreg', report['baseline']))
  lines = [f'{report["split"]} ({report["transformer"]["all"]["num_pairs"]} '
           f'pairs, checkpoint step {report["checkpoint_step"]}; '
           f'{report["num_originals_in_training_split"]} originals are in the '
           'training split)',
           f'{"accuracy":<28}' + ''.join(f'{n:>14}' for n, _ in columns)]
  for subset, title in (('all', 'all pairs'),
                        ('unseen', 'originals not trained on')):
    lines.append(f'{title} ({report["transformer"][subset]["num_pairs"]}):')
    for key in ('original_accuracy', 'revised_accuracy', 'pair_accuracy'):
      values = [c[subset][key] for _, c in columns]
      lines.append(f'  {key.split("_")[0]:<26}' + ''.join(
          f'{"-" if v is None else f"{v:.4f}":>14}' for v in values))
  return '\n'.join(lines)


def report_after_training(config: ml_collections.ConfigDict,
                          workdir: str | Path, command: str) -> None:
  """Scores the best checkpoint on test (unless `eval.after_training` is
  off) and prints the commands to run next.

  `command` is the training command without `--mode`, to extend with modes.
  """
  if config.eval.after_training:
    evaluate(config, workdir, 'test', baseline=False)
  if workdir_lib.is_writer():
    print(f'\nartefacts in {workdir}/: checkpoints/, tokenizer.json, '
          'config.json, metrics.jsonl, tensorboard/, curves.png' +
          (', eval_test.json' if config.eval.after_training else ''))
    print('next:')
    print(f'  {command} --mode=eval [--eval_split=rotten_tomatoes]')
    print(f'  {command} --mode=predict --text="This movie was amazing!"')
