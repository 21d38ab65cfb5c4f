"""The TF-IDF baseline: 1-2-gram TF-IDF features and logistic regression.

The bar the transformer has to clear. `--mode=eval` reports it beside the
transformer, and `analysis/` puts it through every study, so it scores text
through the same `[n, 2]` logits interface as `inference.Predictor`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from sentiment_jax import input_pipeline


class TfidfBaseline:
  """Fitted on a training split at construction; `logits(texts)` scores."""

  def __init__(self, train: input_pipeline.Split):
    start = time.perf_counter()
    self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2,
                                      sublinear_tf=True)
    features = self.vectorizer.fit_transform(train.texts)
    # C chosen on the validation split from {3, 10, 30, 100}.
    self.classifier = LogisticRegression(C=30.0, max_iter=2000)
    self.classifier.fit(features, train.labels)
    self.fit_seconds = time.perf_counter() - start

  def logits(self, texts: Sequence[str]) -> np.ndarray:
    """Float64 logits `[n, 2]`: `[0, margin]`, so softmax is the LR's sigmoid."""
    margin = self.classifier.decision_function(
        self.vectorizer.transform(list(texts)))
    return np.stack([np.zeros_like(margin), margin], axis=1)
