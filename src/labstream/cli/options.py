"""Click options whose defaults and help texts come from the settings table.

Every such option defaults to None ("not given"), so the settings builder can tell a
command-line value from the config file's; the help shows the table's default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from labstream.settings import help_of

__all__ = [
    "LIMIT_OPTIONS",
    "TELEMETRY_OPTIONS",
    "apply",
    "setting",
    "threads_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def setting(name: str, *decls: str, **kwargs: Any) -> Callable[[F], F]:
    """`click.option(*decls)` for table key `name`; the command receives it as `name`."""
    kwargs.setdefault("default", None)
    kwargs.setdefault("help", help_of(name))
    return click.option(*decls, name, **kwargs)


def threads_option(name: str) -> Callable[[F], F]:
    """`-n/--threads` (seed alias `--n-threads`), the same spelling on every command."""
    return setting(name, "-n", "--threads", "--n-threads", type=int)


def apply(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Several options as one decorator, in the order given."""

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


LIMIT_OPTIONS = apply(
    setting("max_file_size", "--max-file-size", metavar="SIZE"),
    setting("max_incomplete_files", "--max-incomplete-files", type=int, metavar="N"),
    setting("max_incomplete_bytes", "--max-incomplete-bytes", metavar="SIZE"),
    setting("incomplete_timeout", "--incomplete-timeout", type=float, metavar="SECONDS"),
)
TELEMETRY_OPTIONS = apply(
    setting("heartbeat_seconds", "--heartbeat-seconds", type=float, metavar="SECONDS"),
    setting("heartbeat_topic", "--heartbeat-topic", envvar="LABSTREAM_HEARTBEAT_TOPIC"),
    setting("metrics_port", "--metrics-port", metavar="[HOST:]PORT"),
    setting("heartbeat_signing_key", "--heartbeat-signing-key", metavar="FILE"),
)
