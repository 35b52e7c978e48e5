"""The process Windows' service manager runs (via pywin32's pythonservice.exe).

It runs the service's role (watch, download or process, the `role` option) in this
process (`labstream.runners.run_role`: the runners the CLI uses) and on SvcStop sets its
stop Event: the graceful stop, as `q` or Ctrl+C on the command line. Log lines go to
NAME-service.log in the state folder (else next to the config).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import servicemanager
import win32event
import win32service
import win32serviceutil

from labstream.config import load_config
from labstream.errors import LabstreamError
from labstream.runners import run_role
from labstream.service.base import STOP_TIMEOUT_SECONDS


class LabstreamService(win32serviceutil.ServiceFramework):  # type: ignore[misc]
    _svc_name_ = "labstream"
    _svc_display_name_ = "labstream watcher"

    def __init__(self, args: list[str]) -> None:
        super().__init__(args)
        self.name = args[0]
        self.stop_event = win32event.CreateEvent(None, 0, 0, None)
        self.stop = threading.Event()
        self.done = threading.Event()

    def SvcDoRun(self) -> None:
        option = win32serviceutil.GetServiceCustomOption
        config = option(self.name, "config")
        state = option(self.name, "state", None)
        role = option(self.name, "role", "watch")
        bootstrap = option(self.name, "bootstrap", None)
        log_dir = Path(state or Path(config).parent)
        logging.basicConfig(
            filename=log_dir / f"{self.name}-service.log",
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        logging.getLogger("labstream.librdkafka").setLevel(logging.WARNING)
        try:
            servicemanager.LogInfoMsg(f"{self.name}: {role} started")
            config_loaded = load_config(config, bootstrap=bootstrap or None)
            summary = run_role(role, config_loaded, self.stop, Path(state) if state else None)
            servicemanager.LogInfoMsg(f"{self.name}: {summary}")
        except LabstreamError as exc:
            logging.getLogger(f"labstream.{role}").error("stopped role=%s reason=%s", role, exc)
            servicemanager.LogErrorMsg(f"{self.name}: {role} stopped: {exc}")
        finally:
            self.done.set()

    def SvcStop(self) -> None:
        self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING, waitHint=STOP_TIMEOUT_SECONDS * 1000)
        self.stop.set()
        self.done.wait(STOP_TIMEOUT_SECONDS)
        win32event.SetEvent(self.stop_event)


if __name__ == "__main__":
    win32serviceutil.HandleCommandLine(LabstreamService)
