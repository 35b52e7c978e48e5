"""Background threads: the one place labstream starts a thread.

`BackgroundLoop` is the base of every long-running helper (watchdog's `BaseThread` is the
model): a stop event, `should_keep_running()`, one restart policy (an exception from `run`
is logged in one line and `run` starts again after `restart_seconds`; a second stop call is
harmless), one join timeout, and a context manager that starts and stops it.

`spawn` starts a plain thread for the few that are not loops of their own: worker pools
whose loop is the pool's (upload senders, downloader consumers), a server's
`serve_forever`, a blocking read of stdin, and a hash pipe's worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["BackgroundLoop", "spawn"]

logger = logging.getLogger(__name__)
L = TypeVar("L", bound="BackgroundLoop")


def spawn(target: Callable[[], object], name: str, *, start: bool = True) -> threading.Thread:
    """A daemon thread running `target` (started unless `start` is False). Daemon, so a bug
    that leaves one running never keeps the process alive; every caller joins it on stop."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    if start:
        thread.start()
    return thread


class BackgroundLoop:
    """Runs `run()` on its own thread until `stop()`; restarts it after an exception.

    Subclasses implement `run`, looping while `should_keep_running()` and waiting with
    `wait(seconds)` (which returns early on stop). `on_error` says what a failure looks like
    in the log; `restarts` counts them.
    """

    restart_seconds = 5.0  # pause before `run` starts again after an exception
    join_seconds = 30.0  # how long `stop` waits for `run` to return

    def __init__(self, name: str) -> None:
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts = 0

    def __enter__(self: L) -> L:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._thread is None:
            self._thread = spawn(self._main, self.name)

    def stop(self) -> None:
        """Ask `run` to return and wait for it (at most `join_seconds`)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.join_seconds)
            if self._thread.is_alive():
                logger.warning("background thread still busy after %gs name=%s", self.join_seconds, self.name)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def should_keep_running(self) -> bool:
        return not self._stop.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True if stopping meanwhile."""
        return self._stop.wait(seconds)

    def run(self) -> None:
        raise NotImplementedError

    def on_error(self, exc: Exception) -> None:
        """Called with what `run` raised, before it restarts. The default keeps the traceback:
        an unexpected error is a bug to find."""
        logger.error("background loop restarting name=%s", self.name, exc_info=exc)

    def _main(self) -> None:
        while self.should_keep_running():
            try:
                self.run()
                return
            except Exception as exc:
                self.restarts += 1
                self.on_error(exc)
                self.wait(self.restart_seconds)
