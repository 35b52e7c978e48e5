"""Settings: config file (seed INI format) + environment + command line -> one frozen object per role.

Input: a `Config` (labstream.config) and the command-line values. Output: `WatchSettings`,
`DownloadSettings`, `ProcessSettings`, `UploadSettings`, each checked once, with the defaults
and help texts of every `[labstream]` key in one table (`settings.table.KEYS`).
"""

from __future__ import annotations

from labstream.settings.roles import (
    DownloadSettings,
    ProcessSettings,
    StartPosition,
    UploadSettings,
    WatchSettings,
    check_state_dir,
    download_group,
    download_settings,
    process_group,
    process_settings,
    upload_settings,
    watch_settings,
)
from labstream.settings.sections import Telemetry
from labstream.settings.table import FILE_KEYS, KEYS, Key, default_of, help_of, program_values, resolve

__all__ = [
    "FILE_KEYS",
    "KEYS",
    "DownloadSettings",
    "Key",
    "ProcessSettings",
    "StartPosition",
    "Telemetry",
    "UploadSettings",
    "WatchSettings",
    "check_state_dir",
    "default_of",
    "download_group",
    "download_settings",
    "help_of",
    "process_group",
    "process_settings",
    "program_values",
    "resolve",
    "upload_settings",
    "watch_settings",
]
