"""Run the watcher as an OS service: systemd (Linux), launchd (macOS), Windows service.

Input: a config file (with `file_directory` and `topic_name` in its program section) and a
service name. Output: a unit/plist/service registration that runs `labstream watch` at
boot, restarts it on failure and stops it through the watcher's graceful stop.
"""

from __future__ import annotations

from labstream.service.base import ServiceManager, ServiceSpec, manager_for_platform

__all__ = ["ServiceManager", "ServiceSpec", "manager_for_platform"]
