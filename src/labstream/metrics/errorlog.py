"""Count WARNING and ERROR log records by kind, and keep the last error's text."""

from __future__ import annotations

import logging
import threading
from collections import Counter

__all__ = ["ErrorLog"]

MAX_KINDS = 200  # kinds are logger names: a fixed set, but never an unbounded label set


class ErrorLog(logging.Handler):
    """A handler for the `labstream` logger; a context manager that attaches it."""

    def __init__(self, logger_name: str = "labstream") -> None:
        super().__init__(logging.WARNING)
        self._logger = logging.getLogger(logger_name)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._guard = threading.Lock()
        self.last_error = ""

    def __enter__(self) -> ErrorLog:
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        kind = record.name.removeprefix("labstream.")
        with self._guard:
            key = (record.levelname.lower(), kind)
            if key in self._counts or len(self._counts) < MAX_KINDS:
                self._counts[key] += 1
            if record.levelno >= logging.ERROR:
                try:
                    self.last_error = record.getMessage()[:1000]
                except Exception:  # a malformed log call must not break logging
                    self.last_error = str(record.msg)[:1000]

    def counts(self) -> dict[tuple[str, str], int]:
        """(level, kind) -> records seen, e.g. ("error", "download.assembler")."""
        with self._guard:
            return dict(self._counts)
