"""The code stays ruff-clean (CONVENTIONS.md), checked in CI rather than by memory."""

from __future__ import annotations

import subprocess
import sys

from bot.config import PROJECT_ROOT


def test_ruff_finds_nothing():
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
