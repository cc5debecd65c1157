"""Linli's natural-language understanding: Rasa NLU trained on nlu/<language>.yml."""

import bot  # noqa: F401 - sets the OpenMP wait policy before Rasa loads scikit-learn (bot/__init__.py)
