"""Synthetic data: what digitlab trains on and what its benchmarks test on.

- ``styles``: stroke-level styles MNIST's writers seldom use (flagged 1s, open 4s, crossed 7s, hooked 9s),
  for training;
- ``renders``: digits rendered as users send them (paper, pens, scans) and non-digits, for the
  predict and refusal benchmarks and the reject model's training;
- ``pagegen``: held-out homework pages, scans and notebook photos (never the reader's training
  generator, which is ``reader.linegen``);
- ``phonegen``: a second, harsher phone-photo model, written after the page pipeline was tuned.
"""
