#!/usr/bin/env python3
"""Fail on an import cycle between the project's modules, and on an import across a layer's contract.

    python scripts/import_graph.py        (part of `make lint`)

The arrows must run one way (DESIGN.md): views, admin, commands and tasks
call services; services call models and the services of the apps below them;
`notifications` is the lowest app and imports neither `accounts` nor
`profiles`; `accounts` does not import `profiles` (profiles registers what
it adds: its export sections, its admin inlines); `core`, the plumbing no
app owns, imports no app and not `config`, the composition root. An app's `tasks.py` counts as part of its services. Every import
counts, those inside functions too; tests and migrations do not, nor imports
only for type checking.

Why a script and not import-linter's contracts alone: its cycle contract
(`acyclic_siblings`) compares the children of one package at a time, so a
cycle through two apps would pass, and it cannot count `tasks.py` with the
services. The graph is grimp's, the engine under import-linter.
"""

from __future__ import annotations

import itertools
import sys
from collections import defaultdict
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("accounts", "config", "core", "notifications", "profiles")
LOWEST = "notifications"
ABOVE_LOWEST = ("accounts", "profiles")
#: The layer contracts: a package never imports the ones listed for it.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "core": ("accounts", "config", "notifications", "profiles"),
    "accounts": ("config", "profiles"),
    # The composition root imports the apps, never the other way round.
    "notifications": ("config",),
    "profiles": ("config",),
}


def node(module: str) -> str:
    """The graph node of a module: `<app>.tasks` (and anything under it) is the app's services."""
    app, _, rest = module.partition(".")
    if rest == "tasks" or rest.startswith("tasks."):
        return f"{app}.services"
    return module


def counted(module: str) -> bool:
    parts = module.split(".")
    return "tests" not in parts and "migrations" not in parts


def components(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan, iterative); a cycle is one with two or more modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            vertex, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(edges[successor]))))
                    break
                if successor in on_stack:
                    low[vertex] = min(low[vertex], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[vertex])
                if low[vertex] == index[vertex]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == vertex:
                            break
                    found.append(sorted(component))
    return found


def shortest_loop(start: str, edges: dict[str, set[str]], members: set[str]) -> list[str]:
    """The shortest path from `start` back to itself inside one component (breadth first)."""
    previous: dict[str, str] = {}
    queue = [start]
    for vertex in queue:
        for successor in sorted(edges[vertex] & members):
            if successor == start:
                path = [vertex]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if successor not in previous:
                previous[successor] = vertex
                queue.append(successor)
    return [start]


def problems(
    packages: tuple[str, ...] = PACKAGES,
    lowest: str = LOWEST,
    above_lowest: tuple[str, ...] = ABOVE_LOWEST,
    forbidden: dict[str, tuple[str, ...]] | None = None,
) -> list[str]:
    """What is wrong with the import graph of `packages`, one message per problem; [] when nothing is."""
    graph = grimp.build_graph(*packages, exclude_type_checking_imports=True, cache_dir=None)
    modules = {m for m in graph.modules if counted(m)}
    edges: dict[str, set[str]] = defaultdict(set)
    lines: dict[tuple[str, str], list[str]] = defaultdict(list)
    for importer in modules:
        edges[node(importer)]  # every module is a node, even one that imports nothing of ours
        for imported in graph.find_modules_directly_imported_by(importer):
            if imported not in modules or node(imported) == node(importer):
                continue
            edges[node(importer)].add(node(imported))
            for detail in graph.get_import_details(importer=importer, imported=imported):
                lines[node(importer), node(imported)].append(f"{importer}:{detail['line_number']}")

    found = []
    for component in components(edges):
        if len(component) < 2:
            continue
        loop = shortest_loop(component[0], edges, set(component))
        steps = "".join(
            f"\n  {importer} -> {imported}  ({', '.join(lines[importer, imported])})"
            for importer, imported in itertools.pairwise(loop)
        )
        found.append(
            f"Import cycle between {len(component)} modules: {', '.join(component)}. One of its loops:{steps}"
        )
    contracts = FORBIDDEN if forbidden is None else forbidden
    for (importer, imported), where in sorted(lines.items()):
        low, high = importer.split(".")[0], imported.split(".")[0]
        if low == lowest and high in above_lowest:
            found.append(f"{lowest} imports an app above it: {importer} -> {imported}  ({', '.join(where)})")
        elif high in contracts.get(low, ()):
            found.append(f"{low} must not import {high}: {importer} -> {imported}  ({', '.join(where)})")
    return found


def main() -> int:
    sys.path.insert(0, str(ROOT))
    found = problems()
    for message in found:
        print(message)
    if found:
        print(f"{len(found)} import problem(s); see DESIGN.md (the arrows run one way).")
        return 1
    contracts = "; ".join(f"{low} imports none of {', '.join(high)}" for low, high in FORBIDDEN.items())
    print(f"Import graph of {', '.join(PACKAGES)}: no cycle; {LOWEST} imports no app above it; {contracts}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
