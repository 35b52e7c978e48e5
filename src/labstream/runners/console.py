"""The watcher's console: `q`/`quit` stops, `c`/`check` reports; a still-alive line."""

from __future__ import annotations

import logging
import sys
import threading

from labstream.upload.streamer import DirectoryStreamer

__all__ = ["Console"]

logger = logging.getLogger("labstream.watch")


class Console:
    """Prints periodic status lines and, with `read_stdin`, reads commands from stdin."""

    def __init__(
        self,
        streamer: DirectoryStreamer,
        stop: threading.Event,
        update_seconds: float,
        *,
        read_stdin: bool = True,
    ) -> None:
        self._streamer = streamer
        self._stop = stop
        self._update = update_seconds
        self._read_stdin = read_stdin
        self._ticker = threading.Thread(target=self._tick, name="labstream-status", daemon=True)
        # A blocking stdin read cannot be interrupted; this daemon thread dies with the process.
        self._reader = threading.Thread(target=self._read, name="console-stdin", daemon=True)

    def __enter__(self) -> Console:
        if self._update > 0:
            self._ticker.start()
        if self._read_stdin and sys.stdin is not None and not sys.stdin.closed:
            self._reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join()

    def _tick(self) -> None:
        while not self._stop.wait(self._update):
            status = self._streamer.status()
            logger.info(
                "still watching settling=%d queued=%d sending=%d sent=%d failed=%d",
                status.settling,
                status.queued,
                len(status.sending),
                status.session.sent,
                status.session.failed,
            )

    def _read(self) -> None:
        for line in sys.stdin:
            command = line.strip().lower()
            if command in ("q", "quit"):
                logger.warning("stopping cleanly (asked on the console)")
                self._stop.set()
                return
            if command in ("c", "check"):
                print("\n".join(self._streamer.status().lines()), file=sys.stderr, flush=True)
            elif command:
                print("commands: c/check = status, q/quit = stop", file=sys.stderr)
