"""`run_role`: a long-running role (watch, download, process) from its config file alone.

What an OS service runs in-process (the Windows host) and what `service install` checks
before writing anything: every argument the role needs comes from the config's [labstream]
section (file_directory/download_directory, topic_name, processor).
"""

from __future__ import annotations

import threading
from pathlib import Path

from labstream.config import Config
from labstream.errors import ConfigError
from labstream.runners.console import QUIET
from labstream.runners.download import run_download
from labstream.runners.process import run_process
from labstream.runners.watch import run_watch
from labstream.settings import (
    DownloadSettings,
    ProcessSettings,
    WatchSettings,
    download_settings,
    process_settings,
    watch_settings,
)

__all__ = ["role_settings", "run_role"]

RoleSettings = WatchSettings | DownloadSettings | ProcessSettings


def role_settings(role: str, config: Config, state: Path | None = None) -> RoleSettings:
    """The role's settings from the config file; refuses what is missing or wrong."""
    if role == "watch":
        return watch_settings(config, {"state": state} if state else {})
    if role == "download":
        return download_settings(config, {})
    if role == "process":
        return process_settings(config, {})
    raise ConfigError(f"role {role!r}: one of watch, download, process")


def run_role(role: str, config: Config, stop: threading.Event, state: Path | None = None) -> str:
    """Run the role until `stop` is set; returns its one-line summary."""
    settings = role_settings(role, config, state)
    if isinstance(settings, WatchSettings):
        summary = run_watch(settings, stop, console=QUIET)
        return f"watcher stopped; sent {summary.sent} file(s), {summary.failed} failed"
    if isinstance(settings, DownloadSettings):
        report = run_download(settings, stop)
        return f"downloader stopped; {report.files} verified file(s), {report.failed} failed"
    outcome = run_process(settings, stop)
    return f"processor stopped; {outcome.report.processed} file(s), {outcome.report.failed} failed"
