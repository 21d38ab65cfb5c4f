"""sentiment_jax: a Flax transformer sentiment classifier for movie reviews."""
