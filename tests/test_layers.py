"""The import picture (tools/import_graph.py): no circle, no import up a layer, and the check
itself catches both."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.config import PROJECT_ROOT

TOOL = PROJECT_ROOT / "tools" / "import_graph.py"


def run_tool(cwd: Path, *packages: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *packages], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)


def test_bot_flows_and_nlu_have_no_circle_and_no_import_up_a_layer():
    result = run_tool(PROJECT_ROOT, "bot", "flows", "nlu")
    assert result.returncode == 0, result.stderr
    picture = dict(line.split(" -> ") for line in result.stdout.splitlines() if " -> " in line)
    # The shared message types sit below everything; flows and NLU never reach the core.
    assert picture["bot.messages"] == "(nothing of ours)"
    for lower in ("flows", "nlu", "bot.services"):
        assert "bot.core" not in picture[lower].split(", ")
        assert "bot.channels" not in picture[lower].split(", ")


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_a_circle_through_a_lazy_import_is_found(tmp_path):
    write(tmp_path, {
        "flows/__init__.py": "",
        "flows/a.py": "from flows import b\n",
        "flows/b.py": "def later():\n    from flows.a import x  # lazy, still a circle\n",
    })
    result = run_tool(tmp_path, "flows")
    assert result.returncode == 1
    assert "circle of 2: flows.a, flows.b" in result.stderr


def test_flows_importing_the_core_even_for_type_hints_is_an_import_up_a_layer(tmp_path):
    write(tmp_path, {
        "bot/__init__.py": "",
        "bot/core.py": "from flows import base\n",
        "flows/__init__.py": "",
        "flows/base.py": ("from typing import TYPE_CHECKING\n"
                          "if TYPE_CHECKING:\n    from bot.core import Assistant\n"),
    })
    result = run_tool(tmp_path, "bot", "flows")
    assert result.returncode == 1
    assert "circle" not in result.stderr  # a type hint is never run: no circle…
    assert "flows.base imports for type hints bot.core, a higher layer" in result.stderr
