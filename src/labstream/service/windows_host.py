"""The process Windows' service manager runs (via pywin32's pythonservice.exe).

It runs the watcher in this process (`labstream.runners.run_watch`, the runner the CLI
uses) and on SvcStop sets its stop Event: the watcher's graceful stop, as `q` on its
console. Log lines go to NAME-service.log in the state folder (else next to the config).
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
from labstream.runners import run_watch
from labstream.service.base import STOP_TIMEOUT_SECONDS
from labstream.settings import watch_settings


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
        log_dir = Path(state or Path(config).parent)
        logging.basicConfig(
            filename=log_dir / f"{self.name}-service.log",
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        logging.getLogger("labstream.librdkafka").setLevel(logging.WARNING)
        try:
            settings = watch_settings(load_config(config), {"state": state} if state else {})
            servicemanager.LogInfoMsg(f"{self.name}: watcher started")
            summary = run_watch(settings, self.stop, console=False)
            servicemanager.LogInfoMsg(
                f"{self.name}: watcher stopped; sent {summary.sent} file(s), {summary.failed} failed"
            )
        except LabstreamError as exc:
            logging.getLogger("labstream.watch").error("watcher stopped reason=%s", exc)
            servicemanager.LogErrorMsg(f"{self.name}: watcher stopped: {exc}")
        finally:
            self.done.set()

    def SvcStop(self) -> None:
        self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING, waitHint=STOP_TIMEOUT_SECONDS * 1000)
        self.stop.set()
        self.done.wait(STOP_TIMEOUT_SECONDS)
        win32event.SetEvent(self.stop_event)


if __name__ == "__main__":
    win32serviceutil.HandleCommandLine(LabstreamService)
