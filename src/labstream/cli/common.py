"""Options and helpers shared by the commands: config/topic options, signals, the console."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from labstream.cli.globals import progress_wanted
from labstream.cli.options import setting
from labstream.runners.console import ConsoleMode
from labstream.settings import help_of
from labstream.units import human_bytes

__all__ = [
    "config_option",
    "file_topic_option",
    "human_bytes",
    "interactive",
    "key_option",
    "receipts_key_option",
    "stop_on_signals",
    "topic_option",
    "trusted_keys_option",
]

logger = logging.getLogger(__name__)

config_option = click.option(
    "-c",
    "--config",
    "config_name",
    default="local",
    show_default=True,
    help="Config file path, or a built-in config name.",
)
topic_option = click.option("-t", "--topic", required=True, help="Kafka topic.")
# download and process: the topic may come from topic_name in [labstream] (as for a service)
file_topic_option = click.option("-t", "--topic", default=None, help=help_of("topic_name"))
key_option = setting(
    "encryption_key_file", "--encryption-key-file", type=click.Path(exists=True, dir_okay=False)
)
receipts_key_option = setting(
    "receipts_signing_key", "--receipts-key", type=click.Path(exists=True, dir_okay=False)
)
trusted_keys_option = setting("receipts_trusted_keys", "--receipts-trusted-keys", metavar="FILES")


@contextmanager
def stop_on_signals(stop: threading.Event, state: dict[str, int] | None = None) -> Iterator[dict[str, int]]:
    """First Ctrl+C or SIGTERM sets `stop`; a second one exits at once.

    Yields `state` (a new dict if None) whose "code" is the exit status the signal asks for
    (130 or 0).
    """
    state = state if state is not None else {}
    state.update(code=0, count=0)

    def handler(signum: int, _frame: Any) -> None:
        state["count"] += 1
        if state["count"] > 1:
            os._exit(130)
        state["code"] = 130 if signum == signal.SIGINT else 0
        logger.info("stopping cleanly (again to stop at once) signal=%s", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield state
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def interactive() -> ConsoleMode:
    """A stage run from a shell: `q`/`c` on stdin, a live display if wanted (--progress)."""
    return ConsoleMode(read_stdin=True, live=progress_wanted())
