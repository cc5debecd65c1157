"""Linli's natural-language understanding: Rasa NLU trained on nlu/<language>.yml."""

import os

# As in bot/__init__.py: OpenMP threads wait passively (set before Rasa loads scikit-learn and
# the sentence encoder, for processes that import nlu first).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "1000")
