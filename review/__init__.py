"""Part 3: a code review of a transformer classifier, proven by tests and a benchmark."""
