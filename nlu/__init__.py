"""Linli's natural-language understanding: Rasa NLU trained on nlu/<language>.yml."""
