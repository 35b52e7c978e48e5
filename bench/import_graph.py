"""The package's import graph between subpackages, and its cycles (issue 26).

    python bench/import_graph.py            # edges "a -> b (modules)" and the cycles

Counts module-level and function-level `from labstream.X` / `import labstream.X` imports
alike (a deferred import is still a dependency), but not those under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
import itertools
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src" / "labstream"


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "labstream"


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("labstream"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("labstream"))
    return found


def graph() -> dict[str, dict[str, set[str]]]:
    edges: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in sorted(ROOT.rglob("*.py")):
        module = "labstream." + ".".join(path.relative_to(ROOT).with_suffix("").parts)
        source = unit_of(module.removesuffix(".__init__"))
        for target in imports(path):
            dest = unit_of(target)
            if dest != source and (ROOT / dest).is_dir() and (ROOT / source).is_dir():
                edges[source][dest].add(module.removeprefix("labstream."))
    return edges


def cycles(edges: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    found = []
    nodes = sorted(edges)
    for a, b in itertools.permutations(nodes, 2):
        if a < b and b in edges[a] and a in edges[b]:
            found.append([a, b])

    # longer cycles: DFS
    def reach(start: str) -> set[str]:
        seen, stack = set(), [start]
        while stack:
            n = stack.pop()
            for m in edges.get(n, {}):
                if m not in seen:
                    seen.add(m)
                    stack.append(m)
        return seen

    strongly = sorted({tuple(sorted(n for n in nodes if n in reach(a) and a in reach(n))) for a in nodes})
    return found + [list(c) for c in strongly if len(c) > 2]


def main() -> int:
    edges = graph()
    for source in sorted(edges):
        for dest in sorted(edges[source]):
            print(f"{source} -> {dest}  ({', '.join(sorted(edges[source][dest]))})")
    found = cycles(edges)
    print(f"\n{len(found)} cycle(s) between subpackages" + (":" if found else ""))
    for cycle in found:
        print("  " + " <-> ".join(cycle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
