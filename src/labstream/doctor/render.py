"""A doctor report for people (one line per check) and for scripts (JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from labstream.doctor.check import Check, Status
from labstream.logsafe import shown

__all__ = ["render_json", "render_text", "symbols_for"]

UNICODE = {Status.OK: "✓", Status.FAIL: "✗", Status.INFO: "·", Status.WARN: "!"}
ASCII = {Status.OK: "[ok]", Status.FAIL: "[FAIL]", Status.INFO: "[--]", Status.WARN: "[WARN]"}


def symbols_for(encoding: str | None) -> dict[Status, str]:
    """✓/✗ where the terminal's encoding can print them, plain ASCII otherwise."""
    try:
        "".join(UNICODE.values()).encode(encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return ASCII
    return UNICODE


def render_text(checks: Sequence[Check], encoding: str | None) -> str:
    marks = symbols_for(encoding)
    lines = []
    for check in checks:
        line = f"{marks[check.status]} {check.name}: {shown(check.detail, 500)}"
        if check.fix:
            line += f" -> fix: {shown(check.fix, 500)}"
        lines.append(line)
    failed = sum(c.status is Status.FAIL for c in checks)
    warned = sum(c.status is Status.WARN for c in checks)
    counted = f"{len(checks)} checks" + (f" ({warned} warning(s))" if warned else "")
    lines.append(f"{counted}, {failed} failed" if failed else f"{counted}, all passed")
    return "\n".join(lines)


def render_json(checks: Sequence[Check]) -> str:
    return json.dumps(
        {
            "ok": not any(c.status is Status.FAIL for c in checks),
            "checks": [
                {"name": c.name, "status": c.status.value, "detail": c.detail, "fix": c.fix} for c in checks
            ],
        },
        indent=2,
    )
