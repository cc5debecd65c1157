#!/usr/bin/env python3
"""Prints which of Linli's packages import which, and fails on an import circle or a layer broken.

    python3 tools/import_graph.py [bot flows nlu]

Every import counts, lazy ones inside functions too; imports under `if TYPE_CHECKING:` (type
hints only, never run) are left out of the circles but not out of the layer check. Exits 1 if
modules import each other in a circle, or if a module imports one of a higher layer (the shared
message types at the bottom, then models and services, flows and the NLU, the core, and the
channels, console and commands at the top: see LAYERS), else 0.
Standard library only (ast), so it runs before anything is installed.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

# Lower layers first; a module may import its own layer and those below it. A module is placed
# by the longest prefix of its name listed here (bot.channels.base is not bot.channels).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("nlu.normalise", "bot.messages", "bot.config", "bot.places", "bot.i18n", "bot.text",
     "bot.keys", "bot.specs",
     "bot.voice", "bot.speech", "bot.models", "nlu.keywords", "nlu.encoder", "nlu.components"),
    ("bot.db", "bot.cluster", "bot.clip_gaps", "bot.console.models"),
    ("bot.services", "bot.delivery"),
    ("flows", "nlu"),
    ("bot.core", "bot.staff"),
    ("bot.channels.base",),
    ("bot.channels", "bot.push", "bot.wiring", "bot.app", "bot.demo", "bot.console",
     "bot.cli", "bot"),
)


def modules(tops: list[str]) -> dict[str, Path]:
    found = {}
    for top in tops:
        for path in Path(top).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(mods: dict[str, Path], tops: list[str]) -> tuple[dict, dict]:
    """Two graphs, module → modules it imports: run-time imports, and type-hint-only ones."""

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    run: dict[str, set[str]] = {m: set() for m in mods}
    typing_only: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        hints = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                hints.update(id(n) for branch in node.body for n in ast.walk(branch))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                # `from bot import text` imports the module bot.text; `from bot.core import
                # Assistant` imports bot.core.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in mods else base
                           for alias in node.names]
            else:
                continue
            graph = typing_only if id(node) in hints else run
            for target in targets:
                found = resolve(target)
                if found and found != module and found.split(".")[0] in tops:
                    graph[module].add(found)
    # A package's __init__ handing on names of its own modules is not a dependency on them.
    for graph in (run, typing_only):
        for module in graph:
            if mods[module].name == "__init__.py":
                graph[module] = {m for m in graph[module] if not m.startswith(module + ".")}
    return run, typing_only


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), largest first."""
    sys.setrecursionlimit(10000)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found, key=len, reverse=True)


def placed(module: str) -> tuple[int | None, str]:
    """The module's layer, and the name in LAYERS that places it (the longest that matches)."""
    best, best_name = None, module.split(".")[0]
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if ((module == prefix or module.startswith(prefix + "."))
                    and (best is None or len(prefix) > len(best_name))):
                best, best_name = level, prefix
    return best, best_name


def layer(module: str) -> int | None:
    return placed(module)[0]


def upward(run: dict[str, set[str]], typing_only: dict[str, set[str]]) -> list[str]:
    """Imports of a module of a higher layer than the importer's."""
    broken = []
    for graph, how in ((run, "imports"), (typing_only, "imports for type hints")):
        for module, targets in sorted(graph.items()):
            mine = layer(module)
            for target in sorted(targets):
                theirs = layer(target)
                if mine is not None and theirs is not None and theirs > mine:
                    broken.append(f"{module} {how} {target}, a higher layer")
    return broken


def package_of(module: str) -> str:
    """Where a module sits in the picture: the name in LAYERS that places it."""
    return placed(module)[1]


def picture(run: dict[str, set[str]]) -> list[str]:
    """One line per package: the packages it imports, lowest layer first."""
    edges: dict[str, set[str]] = defaultdict(set)
    for module, targets in run.items():
        edges[package_of(module)]
        for target in targets:
            if package_of(target) != package_of(module):
                edges[package_of(module)].add(package_of(target))

    def order(name: str) -> tuple:
        return (layer(name) if layer(name) is not None else len(LAYERS), name)

    return [f"{name} -> {', '.join(sorted(edges[name], key=order)) or '(nothing of ours)'}"
            for name in sorted(edges, key=order)]


def main(argv: list[str]) -> int:
    tops = argv or ["bot", "flows", "nlu"]
    mods = modules(tops)
    run, typing_only = imports(mods, tops)
    print("\n".join(picture(run)))
    problems = [f"circle of {len(c)}: {', '.join(c)}" for c in circles(run)]
    problems += upward(run, typing_only)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"no import circle and no import up a layer among {len(mods)} modules of "
              f"{', '.join(tops)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
