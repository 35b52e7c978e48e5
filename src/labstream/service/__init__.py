"""Run a long-running role as an OS service: systemd (Linux), launchd (macOS), Windows.

Input: a role (watch, download, process), a config file whose [labstream] section names
what the role needs (file_directory or download_directory, topic_name, processor) and a
service name. Output: a unit/plist/service registration that runs `labstream ROLE --config
CONFIG` at boot, restarts it on failure and stops it through the role's graceful stop.
"""

from __future__ import annotations

from labstream.service.base import ServiceManager, ServiceSpec, manager_for_platform

__all__ = ["ServiceManager", "ServiceSpec", "manager_for_platform"]
