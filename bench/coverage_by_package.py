"""Line coverage per subpackage (and chosen files) from a coverage.py JSON report (issue 26).

    python -m pytest tests/unit -q -p no:cacheprovider --cov=labstream --cov-report=json:/tmp/cov.json
    python bench/coverage_by_package.py /tmp/cov.json            # every subpackage
    python bench/coverage_by_package.py /tmp/cov.json cli/upload.py dashboard/server.py

A package's figure is its covered statements over its statements, summed over its files.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

PREFIX = "src/labstream/"


def per_unit(files: dict[str, dict[str, dict[str, int]]]) -> dict[str, tuple[int, int]]:
    """Subpackage (or `labstream` for top-level modules) -> (covered, statements)."""
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, data in files.items():
        relative = name.split(PREFIX, 1)[-1]
        unit = relative.split("/")[0] if "/" in relative else "labstream"
        sums[unit][0] += data["summary"]["covered_lines"]
        sums[unit][1] += data["summary"]["num_statements"]
    return {unit: (c, n) for unit, (c, n) in sums.items()}


def main(report: str, *chosen: str) -> None:
    files = json.loads(Path(report).read_text())["files"]
    rows = {f"{u}/": cn for u, cn in per_unit(files).items()}
    for wanted in chosen:
        for name, data in files.items():
            if name.endswith(PREFIX + wanted):
                rows[wanted] = (data["summary"]["covered_lines"], data["summary"]["num_statements"])
    for name, (covered, statements) in sorted(rows.items()):
        print(f"{name:28} {100 * covered / max(statements, 1):5.1f}%  {covered}/{statements}")


if __name__ == "__main__":
    main(*sys.argv[1:])
