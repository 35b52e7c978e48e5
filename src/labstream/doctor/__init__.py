"""`labstream doctor`: is this machine, config and topic ready for a role? One line per check.

Input: a config (file or built-in name), optionally a topic, a role (watch, download,
process) and the folder the role watches or writes.
Output: a list of `Check`s, each passed, failed (with the fix) or informational, in order:
config -> network -> security -> topic -> rights -> limits -> receipts -> clock -> local.
Nothing is written to Kafka: rights come from the authorized operations the broker reports,
creation is asked with validate_only, and reads never join a consumer group.
"""

from __future__ import annotations

from labstream.doctor.check import Check, DoctorSettings, Status
from labstream.doctor.keys import known_program_keys
from labstream.doctor.render import render_json, render_text
from labstream.doctor.runner import run_doctor

__all__ = [
    "Check",
    "DoctorSettings",
    "Status",
    "known_program_keys",
    "render_json",
    "render_text",
    "run_doctor",
]
