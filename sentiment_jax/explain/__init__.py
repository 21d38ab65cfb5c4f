"""Explanations of single predictions: attention, rollout and three importance scores.

`request` checks what `--attention_dump` asked for (light, no plotting);
`attribution` computes the scores; `figures` draws them; `page` renders the
offline HTML from `templates/`; `dump` writes a directory per text.
"""
