"""Runners: settings -> a running stage, wired (lock, clients, ledger, receipts, heartbeats).

Input: one settings object (labstream.settings) and a stop Event. Output: the stage runs
until stopped (or idle) and returns its report. The CLI, the Windows service host, `demo`
and the tests call these; `clients` lets tests run them against the in-memory broker.

Each runner is imported when first asked for (labstream.exports): a watcher loads no
download or process code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labstream.exports import lazy_exports

if TYPE_CHECKING:
    from labstream.runners.download import run_download
    from labstream.runners.process import ProcessOutcome, run_process
    from labstream.runners.roles import role_settings, run_role
    from labstream.runners.upload import UploadOutcome, run_upload
    from labstream.runners.watch import WatchSummary, run_watch

__all__ = [
    "ProcessOutcome",
    "UploadOutcome",
    "WatchSummary",
    "role_settings",
    "run_download",
    "run_process",
    "run_role",
    "run_upload",
    "run_watch",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "run_download": "download",
        "ProcessOutcome": "process",
        "run_process": "process",
        "role_settings": "roles",
        "run_role": "roles",
        "UploadOutcome": "upload",
        "run_upload": "upload",
        "WatchSummary": "watch",
        "run_watch": "watch",
    },
)
