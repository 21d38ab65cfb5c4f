"""Part 2: a measured reliability and safety study of a trained run.

`python -m analysis.main --workdir=runs/base` scores the run and the TF-IDF
baseline through calibration, behavioural, shift, out-of-distribution,
selective-prediction and attack studies, and writes `results.json`,
`figures/` and `REPORT.md`. It reads models only through
`sentiment_jax.inference` and computes metrics through `sentiment_jax.metrics`.
"""
