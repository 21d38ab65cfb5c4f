"""The review's findings: what is wrong in `review/naive.py`, and the proof.

Each finding names the test that demonstrates it (on the naive code, with
the right behaviour asserted on ours) or the benchmark figure that measures
it. `review/report.py` renders these, with the benchmark's numbers, into
`review/REVIEW.md`; a test checks that every named test exists.
"""

from __future__ import annotations

import dataclasses

CORRECTNESS, NUMERICAL, PERFORMANCE, MAINTAINABILITY = (
    'correctness', 'numerical', 'performance', 'maintainability')
FINDINGS_TESTS = 'tests/test_review_findings.py'
TWIN_TESTS = 'tests/test_review_twin.py'


@dataclasses.dataclass(frozen=True)
class Finding:
  number: int
  title: str
  severity: str
  symptom: str
  evidence: tuple[str, ...]  # 'path::test' names, or 'benchmark:KEY'.
  fix: str  # Where the fix lives in sentiment_jax.


def _test(path: str, *names: str) -> tuple[str, ...]:
  return tuple(f'{path}::{name}' for name in names)


FINDINGS = (
    Finding(1, 'Mean pooling counts padding', CORRECTNESS,
            'A review scores differently depending on how long its batch '
            "mates are: padding dilutes the mean.",
            _test(FINDINGS_TESTS, 'test_mean_pooling_counts_padding'),
            '`sentiment_jax/models.py`, `Classifier.__call__`: a masked mean '
            'over real tokens.'),
    Finding(2, 'Padding mask on the query axis', CORRECTNESS,
            'Real tokens attend to padding, so the same review changes with '
            'the padded length.',
            _test(FINDINGS_TESTS, 'test_pad_keys_get_attention'),
            '`sentiment_jax/models.py`, `SelfAttention.__call__`: the mask '
            'broadcasts over keys, `mask[:, None, None, :]`.'),
    Finding(3, 'A -inf mask makes a fully masked row NaN', NUMERICAL,
            'An all-padding row (and, with finding 2, any padded query) '
            'gives NaN logits and NaN gradients: one such batch poisons the '
            'params.',
            _test(FINDINGS_TESTS, 'test_all_pad_row_is_nan'),
            '`sentiment_jax/models.py`, `SelfAttention.__call__` (mask with '
            '`finfo.min`) and `Classifier.__call__` (divide by max(count, 1)).'),
    Finding(4, 'Scores scaled by sqrt(d_model), not sqrt(d_head)', NUMERICAL,
            'Attention is sqrt(num_heads) times too soft at initialisation '
            'and learns more slowly; trained weights do not transfer.',
            _test(FINDINGS_TESTS, 'test_scores_scaled_by_model_width'),
            '`sentiment_jax/models.py`, `SelfAttention.__call__`: the query '
            'is scaled by head_dim ** -0.5.'),
    Finding(5, 'Dropout active at evaluation', CORRECTNESS,
            'The same review gets a different score on every call; eval '
            'accuracy is noisy and lower.',
            _test(FINDINGS_TESTS, 'test_eval_is_random'),
            '`sentiment_jax/models.py`: `TransformerConfig.deterministic`, '
            "set by `replace(deterministic=True)` for every eval model."),
    Finding(6, 'The dropout key is reused every step', CORRECTNESS,
            'Every step drops the same units, so dropout regularises far '
            'less than its rate says.',
            _test(FINDINGS_TESTS, 'test_dropout_masks_repeat_across_steps'),
            '`sentiment_jax/steps.py`, `train_step`: the key is folded with '
            'the step number.'),
    Finding(7, 'Positions past max_len are silently clamped', CORRECTNESS,
            'A too-long input is scored with every late token at the last '
            'position, and no error says so.',
            _test(FINDINGS_TESTS, 'test_positions_past_max_len'),
            '`sentiment_jax/models.py`, `Encoder.__call__` raises; '
            '`input_pipeline.encode` truncates before that.'),
    Finding(8, 'A new compilation for every batch length', PERFORMANCE,
            'Training stalls for a compile whenever a batch has a new '
            'longest review: up to one per distinct length.',
            _test(FINDINGS_TESTS, 'test_batch_shapes_are_bucketed'),
            '`sentiment_jax/input_pipeline.py`, `pad_batch`: lengths padded '
            'to a multiple of `data.pad_multiple`.'),
    Finding(9, 'Evaluation drops the last partial batch', CORRECTNESS,
            'Reported accuracy is over fewer examples than the split holds.',
            _test(FINDINGS_TESTS, 'test_eval_counts_every_example'),
            '`sentiment_jax/sharding.py`, `DataParallel.logits`: the last '
            'batch is padded with weight-0 rows and scored.'),
    Finding(10, 'The step is jitted anew on every call', PERFORMANCE,
            'Every step pays a full XLA compile.',
            _test(FINDINGS_TESTS, 'test_step_compiles_once') + (
                'benchmark:ours_vs_naive',),
            '`sentiment_jax/steps.py`, `jit_train_step`: jitted once, with '
            'the batch as an argument.'),
    Finding(11, 'No buffer donation', PERFORMANCE,
            'Params and optimizer state exist twice during each update.',
            _test(FINDINGS_TESTS, 'test_state_is_donated') + (
                'benchmark:peak_rss_mb',),
            '`sentiment_jax/steps.py`, `jit_train_step`: `donate_argnums=0`.'),
    Finding(12, 'A Python loop over heads and unfused Q/K/V', PERFORMANCE,
            'Three projections and a per-head loop: more code that computes '
            'the same function, and a slower step than the fused form once '
            'q, k and v are split along its fused axis (the ratio is in the '
            'optimisations table).',
            _test(FINDINGS_TESTS, 'test_scores_scaled_by_model_width') + (
                'benchmark:ours_vs_naive_jit',),
            '`sentiment_jax/models.py`, `SelfAttention`: one fused QKV '
            'matmul, split along its fused axis, and batched heads.'),
    Finding(13, 'LayerNorm epsilon differs between Flax and PyTorch',
            NUMERICAL,
            'A port with PyTorch defaults drifts from ours (1e-5 vs 1e-6).',
            _test(TWIN_TESTS, 'test_port_mismatches_change_logits'),
            '`review/torch_twin.py`: `LAYER_NORM_EPS`.'),
    Finding(14, 'GELU: tanh approximation vs exact erf', NUMERICAL,
            "PyTorch's default GELU is exact; ours is the tanh form.",
            _test(TWIN_TESTS, 'test_port_mismatches_change_logits'),
            '`review/torch_twin.py`, `TorchClassifier.__init__`.'),
    Finding(15, 'Inverted padding-mask convention', CORRECTNESS,
            'Passing our mask (True = real) as `src_key_padding_mask` (True '
            '= padding) attends to padding only.',
            _test(TWIN_TESTS, 'test_port_mismatches_change_logits'),
            '`review/torch_twin.py`, `TorchClassifier.forward`: `~real`.'),
    Finding(16, "PyTorch's fused inference path ignores the tanh GELU",
            NUMERICAL,
            'Under `torch.no_grad()` in eval mode, `TransformerEncoderLayer` '
            'with `nn.GELU(approximate="tanh")` computes exact GELU, so the '
            'twin agrees in training but not at inference.',
            _test(TWIN_TESTS, 'test_fast_path_ignores_tanh_gelu'),
            '`review/torch_twin.py`: the activation is passed as a function.'),
    Finding(17, 'Gradients summed over (batch, seq) of 3-D arrays',
            PERFORMANCE,
            'Every bias and LayerNorm gradient is a sum over the batch and '
            'sequence axes of a `[batch, seq, features]` array, which '
            'XLA:CPU lowers to a slow two-axis reduce-window; a slower step '
            'than the same model on a flattened token axis.',
            _test(FINDINGS_TESTS, 'test_gradients_sum_over_one_token_axis')
            + ('benchmark:ours_vs_naive_jit',),
            '`sentiment_jax/models.py`, `Encoder.__call__`: the blocks see '
            'the residual stream as `[batch * seq, embed]`.'),
)
