"""The options bounding what messages may cost a downloader (`download` and `process`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from labstream.config import PROGRAM_SECTION, Config
from labstream.download.limits import LIMIT_KEYS, Limits

__all__ = ["limits_from", "limits_options"]

_OPTIONS = (
    click.option(
        "--max-file-size",
        metavar="SIZE",
        default=None,
        help="Refuse files larger than SIZE, e.g. 500GiB [max_file_size; 1TiB].",
    ),
    click.option(
        "--max-incomplete-files",
        type=int,
        default=None,
        metavar="N",
        help="Files in progress per thread; the least recently fed is given up [1000].",
    ),
    click.option(
        "--max-incomplete-bytes",
        metavar="SIZE",
        default=None,
        help="Bytes of files in progress per thread, at least --max-file-size [1TiB].",
    ),
    click.option(
        "--incomplete-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Give up a file in progress after SECONDS without a new chunk [3600].",
    ),
)


def limits_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the limit options; the command receives them as one `limit_values` dict."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {key: kwargs.pop(key) for key in LIMIT_KEYS}
        return command(*args, limit_values=values, **kwargs)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def limits_from(config: Config, cli_values: dict[str, Any]) -> Limits:
    """The command line over `[labstream]` in the config over the defaults."""
    section = config.section(PROGRAM_SECTION)
    values = {key: section.get(key) for key in LIMIT_KEYS}
    values.update({key: value for key, value in cli_values.items() if value is not None})
    return Limits.from_values(values)
