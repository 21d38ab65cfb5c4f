"""The reliability study's statistics, calibration, templates and attacks, on synthetic data."""

import math

import numpy as np
import pytest
from scipy import special
from sklearn import metrics as skm

from analysis import attack, behaviour, counterfactual, lexicon, ood, stats
from sentiment_jax import calibration, metrics

REVIEWS = [f'Review {i}: I did not like it. John saw it in Paris with Mary. '
           f'It is fine and the acting was great, but the plot was dull.'
           for i in range(300)]


def calibrated_sample(n, rng):
  """Confidences in [0.5, 1) with correctness drawn at exactly that rate."""
  confidence = rng.uniform(0.5, 1.0, n)
  return confidence, rng.random(n) < confidence


def reference_ece(confidence, correct, num_bins=15):
  """ECE written out bin by bin, independent of `metrics`: the noise floor
  below must not come from the function under test."""
  total = 0.0
  for b in range(num_bins):
    low, high = b / num_bins, (b + 1) / num_bins
    inside = [(c, k) for c, k in zip(confidence, correct)
              if low <= c < high or (b == num_bins - 1 and c == 1.0)]
    if inside:
      total += abs(sum(k for _, k in inside) - sum(c for c, _ in inside))
  return total / len(confidence)


def test_ece_of_calibrated_probabilities_is_within_noise_of_zero():
  rng = np.random.default_rng(0)
  confidence, correct = calibrated_sample(5000, rng)
  measured = metrics.ece(confidence, correct)
  assert measured == pytest.approx(reference_ece(confidence, correct))
  # What ECE reads for perfectly calibrated data of this size, by simulation.
  null = [reference_ece(confidence, rng.random(5000) < confidence)
          for _ in range(100)]
  noise_floor = np.quantile(null, 0.975)
  low, high = stats.bootstrap(metrics.ece, [(confidence, correct)], 200)
  assert measured <= noise_floor
  assert low <= noise_floor and measured <= high
  # The same confidences made overconfident: the interval leaves the floor.
  over = np.minimum(confidence + 0.1, 1.0)
  low, _ = stats.bootstrap(metrics.ece, [(over, correct)], 200)
  assert low > noise_floor


def test_ece_matches_a_hand_binned_example():
  confidence = [0.55, 0.65, 0.65, 0.95, 0.95, 0.95, 0.95]
  correct = [1, 0, 1, 1, 1, 1, 0]
  # 15 equal-width bins: 0.55 in [8/15, 9/15) (accuracy 1), both 0.65 in
  # [9/15, 10/15) (accuracy 1/2), the 0.95s in the last (accuracy 3/4).
  by_hand = (1 * 0.45 + 2 * 0.15 + 4 * 0.20) / 7
  assert metrics.ece(confidence, correct) == pytest.approx(by_hand)
  # Two equal-mass bins: the 4 lowest (mean confidence 0.7, accuracy 3/4)
  # and the 3 highest (0.95, accuracy 2/3).
  by_hand = (4 * 0.05 + 3 * (0.95 - 2 / 3)) / 7
  assert metrics.ece(confidence, correct, 2, adaptive=True) == pytest.approx(
      by_hand)


def test_reliability_bins_count_every_example_once():
  rng = np.random.default_rng(1)
  confidence, correct = calibrated_sample(1000, rng)
  confidence[:3] = [0.5, 1.0, 14 / 15]  # Edges.
  for adaptive in (False, True):
    bins = metrics.reliability_bins(confidence, correct, 15, adaptive)
    assert sum(b['count'] for b in bins) == 1000
  equal_mass = metrics.reliability_bins(confidence, correct, 10, True)
  assert {b['count'] for b in equal_mass} == {100}


def test_temperature_scaling_recovers_overconfidence():
  rng = np.random.default_rng(2)
  margin = rng.normal(0, 2, 20000)
  labels = (rng.random(20000) < special.expit(margin)).astype(int)
  logits = np.stack([np.zeros_like(margin), 3 * margin], 1)  # 3x too sure.
  temperature = calibration.fit_temperature(logits, labels)
  assert temperature == pytest.approx(3, rel=0.05)
  assert (metrics.log_loss(logits / temperature, labels)
          < metrics.log_loss(logits, labels) - 0.05)
  fitted = calibration.fit(logits, labels)
  assert (metrics.decide(fitted.apply(logits)) == metrics.decide(logits)).all()


def test_accuracy_threshold_keeps_the_largest_set_reaching_the_target():
  confidence = np.asarray([0.99, 0.95, 0.95, 0.9, 0.8, 0.7])
  correct = np.asarray([1, 1, 0, 1, 1, 0], bool)
  # Top 1: 100%; top 3 (the tie goes in together): 67%; top 5: 80%.
  assert calibration.accuracy_threshold(confidence, correct, 0.8) == 0.8
  assert calibration.accuracy_threshold(confidence, correct, 0.9) == 0.99
  assert calibration.accuracy_threshold(confidence, correct, 0.5) == 0.0
  assert calibration.accuracy_threshold(confidence, ~correct | False,
                                        0.99) == math.inf
  fitted = calibration.Calibration(1.0, 'validation', confidence, correct)
  logits = np.stack([np.zeros(2), special.logit([0.85, 0.75])], 1)
  assert fitted.abstain(logits, 0.8).tolist() == [False, True]
  assert calibration.Calibration.from_json(fitted.to_json()).threshold(
      0.8) == 0.8


def test_perfect_ranker_has_the_optimal_aurc():
  rng = np.random.default_rng(3)
  correct = rng.random(500) < 0.85
  perfect = correct + rng.uniform(0, 0.5, 500)  # Every right one ranks first.
  assert stats.aurc(perfect, correct) == pytest.approx(
      stats.optimal_aurc(correct), abs=1e-12)
  assert stats.aurc(rng.random(500), correct) > stats.optimal_aurc(correct)
  coverage, risk = stats.risk_coverage(perfect, correct)
  assert coverage[-1] == 1 and risk[-1] == pytest.approx(1 - correct.mean())


def test_detection_metrics_match_scikit_learn_and_chance():
  rng = np.random.default_rng(4)
  inside, same = rng.normal(0, 1, 2000), rng.normal(0, 1, 2000)
  assert abs(stats.auroc(inside, same) - 0.5) < 0.03
  outside = rng.normal(1, 1, 1500)
  truth = np.r_[np.zeros(2000), np.ones(1500)]
  scores = np.r_[inside, outside]
  assert stats.auroc(inside, outside) == pytest.approx(
      skm.roc_auc_score(truth, scores))
  assert stats.aupr(inside, outside) == pytest.approx(
      skm.average_precision_score(truth, scores))
  accepted = outside <= np.sort(inside)[int(np.ceil(0.95 * 2000)) - 1]
  assert stats.fpr_at_95_tpr(inside, outside) == pytest.approx(
      accepted.mean())


def test_wilson_interval_matches_known_values():
  assert stats.wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
  assert stats.wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)


def test_template_expansion_is_deterministic_and_large_enough():
  first = behaviour.build(REVIEWS, seed=0)
  again = behaviour.build(REVIEWS, seed=0)
  other = behaviour.build(REVIEWS, seed=1)
  texts = lambda tests: [(t.name, c.text) for t in tests for c in t.cases]
  assert texts(first) == texts(again) != texts(other)
  assert len(first) >= 12
  assert sum(len(t.cases) for t in first) >= 1500
  assert {t.kind for t in first} == {'MFT', 'INV', 'DIR'}


def test_every_template_yields_the_label_it_claims():
  for test in behaviour.build(REVIEWS, seed=0):
    if test.kind != 'MFT':
      continue
    for case in test.cases:
      if test.name == 'sarcasm':
        assert case.label == 0
        continue
      expected = behaviour.polarity(case.cue) ^ case.negated
      assert case.label == expected, (test.name, case.text)
      assert case.cue in case.text.replace(',', '').replace('.', '').split()
      if test.name == 'contrast_but':
        assert case.cue in case.text.split(' but ')[1]
      if case.negated:
        assert ' not ' in case.text or "n't " in case.text


def test_edits_change_only_what_they_claim():
  import random
  rng = random.Random(0)
  text = 'John and Mary did not like it. It is dull.'
  swapped = behaviour.swap_names(text, rng)
  assert 'John' not in swapped and 'Mary' not in swapped
  assert swapped.endswith('did not like it. It is dull.')
  assert behaviour.swap_names('no names here', rng) is None
  assert behaviour.toggle_contractions(text, rng) == (
      "John and Mary didn't like it. It's dull.")
  typo = behaviour.add_typos('wonderful acting throughout', rng, count=1)
  assert typo != 'wonderful acting throughout'
  assert sorted(typo) == sorted('wonderful acting throughout')


def test_synonym_lexicon_has_no_antonyms_and_keeps_form():
  for table in (lexicon.SYNONYMS, lexicon.LOOSE):
    for word, options in table.items():
      assert not set(options) & set(lexicon.ANTONYMS.get(word, ())), word
      assert word not in options
  assert attack.candidates('Great,', 'strict') == ['Terrific,', 'Superb,']
  assert 'Nice,' in attack.candidates('Great,', 'lax')
  assert attack.candidates('the', 'lax') == []
  # "like" is mostly a preposition in reviews: no synonym keeps its meaning.
  assert attack.candidates('like', 'lax') == []


def test_mahalanobis_scores_far_points_higher():
  rng = np.random.default_rng(5)
  labels = rng.integers(0, 2, 1000)
  pooled = rng.normal(0, 1, (1000, 4)) + 3 * labels[:, None]
  detector = ood.Mahalanobis(pooled, labels)
  near = rng.normal(0, 1, (200, 4))
  far = rng.normal(0, 1, (200, 4)) + 10
  assert stats.auroc(detector.score(near), detector.score(far)) > 0.99


def test_python_docstrings_are_english_text():
  docs = ood.python_docstrings()
  assert len(docs) >= 500
  assert all(len(d.split()) >= ood.MIN_DOC_WORDS for d in docs)


def test_word_diff_shows_each_edit_with_its_context():
  diff = counterfactual.word_diff(
      'one two three four five six seven great film eight nine ten',
      'one two three four five six seven awful film eight nine ten')
  assert diff == 'four five six seven [-great-]{+awful+} film eight nine ten'
  assert counterfactual.word_diff('a b c', 'a c') == 'a [-b-] c'
  assert counterfactual.word_diff('a c', 'a b c') == 'a {+b+} c'
