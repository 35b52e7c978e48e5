"""Options every command takes before or after its name: -v/-q, --log-format, --progress,
-b/--bootstrap.

`labstream -v watch ...` and `labstream watch ... -v` mean the same: the options are added
to every subcommand without reaching its function (`expose_value=False`); their values
gather in the root context's `meta`, and logging is (re)configured from them here, the only
place that configures logging. `load` is how every command reads its config, with the
`-b/--bootstrap` override applied.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any, cast

import click
from click.core import ParameterSource

from labstream.cli.examples import epilog_of
from labstream.config import Config, load_config
from labstream.kafka.clients import REAL_CLIENTS, KafkaClients

__all__ = [
    "ENVIRONMENT",
    "KAFKA_COMMANDS",
    "JsonFormatter",
    "add_global_options",
    "bootstrap_given",
    "configure_logging",
    "kafka_clients",
    "load",
    "progress_wanted",
]

_KEY = "labstream.globals"
# -b/--bootstrap only where a config is loaded through `load` (it would do nothing elsewhere)
KAFKA_COMMANDS = frozenset(
    {
        "config",
        "upload",
        "watch",
        "download",
        "process",
        "status",
        "resend",
        "dashboard",
        "ls",
        "get",
        "doctor",
        "service",
    }
)
_CONFIG_VARS = "any $VAR, ${VAR} or ${VAR:-default} in the config file"
_LOCAL_VARS = "LABSTREAM_BOOTSTRAP (the broker of the built-in `local` config)"
_KEY_VARS = "LABSTREAM_ENCRYPTION_KEY_FILE or LABSTREAM_ENCRYPTION_KEY (the payload key)"
_STATE_VARS = "XDG_STATE_HOME (LOCALAPPDATA on Windows: the per-user state folder)"
_HEARTBEAT_VARS = "LABSTREAM_HEARTBEAT_TOPIC"
# The environment each command reads, shown at the end of its --help.
ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "watch": (_CONFIG_VARS, _LOCAL_VARS, _KEY_VARS, _HEARTBEAT_VARS, _STATE_VARS),
    "upload": (_CONFIG_VARS, _LOCAL_VARS, _KEY_VARS),
    "download": (_CONFIG_VARS, _LOCAL_VARS, _KEY_VARS, _HEARTBEAT_VARS),
    "process": (_CONFIG_VARS, _LOCAL_VARS, _KEY_VARS, _HEARTBEAT_VARS, _STATE_VARS),
    "get": (_CONFIG_VARS, _LOCAL_VARS, _KEY_VARS),
    "resend": (_CONFIG_VARS, _LOCAL_VARS, _KEY_VARS, _STATE_VARS),
    "dashboard": (_CONFIG_VARS, _LOCAL_VARS, "LABSTREAM_DASHBOARD_TOKEN (the access token)", _HEARTBEAT_VARS),
    "status": (_CONFIG_VARS, _LOCAL_VARS, _STATE_VARS),
    "ls": (_CONFIG_VARS, _LOCAL_VARS),
    "config": (_CONFIG_VARS, _LOCAL_VARS),
    "doctor": (_CONFIG_VARS, _LOCAL_VARS, "JAVA_HOME"),
    "service": (_CONFIG_VARS + " (stored for the service, readable only by its user)",),
    "broker": ("LABSTREAM_CACHE or XDG_CACHE_HOME (downloaded Kafka)", "JAVA_HOME", "KAFKA_HOME"),
}
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of the record (a test may swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message[, exception]."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _values(ctx: click.Context) -> dict[str, Any]:
    values: dict[str, Any] = ctx.find_root().meta.setdefault(
        _KEY, {"verbose": 0, "quiet": False, "log_format": "text"}
    )
    return values


def configure_logging(ctx: click.Context) -> None:
    """Logging on stderr from the options seen so far (called again as more are parsed)."""
    values = _values(ctx)
    verbose = int(values["verbose"])
    level = logging.WARNING if values["quiet"] else (logging.DEBUG if verbose > 1 else logging.INFO)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)  # ours from an earlier call; others' handlers stay
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if values["log_format"] == "json" else logging.Formatter(_TEXT))
    root.addHandler(handler)
    root.setLevel(level)
    librdkafka = logging.getLogger("labstream.librdkafka")
    librdkafka.setLevel(logging.NOTSET if verbose > 1 else logging.WARNING)


_LOGGING = frozenset({"verbose", "quiet", "log_format"})


def _store(name: str) -> Any:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if param.name is None or ctx.get_parameter_source(param.name) is not ParameterSource.COMMANDLINE:
            return  # not given here: keep what an earlier place said
        values = _values(ctx)
        values[name] = values[name] + value if name == "verbose" else value
        if name in _LOGGING:
            configure_logging(ctx)

    return callback


def _options(with_bootstrap: bool) -> list[click.Option]:
    options = [
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            callback=_store("verbose"),
            help="More log output (-vv for debug).",
        ),
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            expose_value=False,
            callback=_store("quiet"),
            help="Only warnings and errors.",
        ),
        click.Option(
            ["--log-format"],
            type=click.Choice(["text", "json"]),
            default=None,
            expose_value=False,
            callback=_store("log_format"),
            help="Log lines as text or one JSON object per line (for log shippers). [default: text]",
        ),
        click.Option(
            ["--progress/--no-progress"],
            default=None,
            expose_value=False,
            callback=_store("progress"),
            help="Progress display on stderr [default: on a terminal, with text logs].",
        ),
    ]
    if with_bootstrap:
        options.append(
            click.Option(
                ["-b", "--bootstrap"],
                metavar="HOST:PORT",
                default=None,
                expose_value=False,
                callback=_store("bootstrap"),
                help="Kafka bootstrap servers, replacing bootstrap.servers of the config.",
            )
        )
    return options


def add_global_options(command: click.Command, *, with_bootstrap: bool, path: str | None = None) -> None:
    """Give `command` (and, for a group, its subcommands) the global options it lacks, and its
    examples and environment variables under the options. `path`: "broker status" for a
    subcommand (its own examples, not those of `status`)."""
    path = path or str(command.name)
    if not command.epilog:
        command.epilog = epilog_of(path, ENVIRONMENT.get(path, ()))
    taken = {opt for param in command.params for opt in getattr(param, "opts", [])}
    command.params.extend(o for o in _options(with_bootstrap) if not taken.intersection(o.opts))
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            add_global_options(sub, with_bootstrap=with_bootstrap, path=f"{path} {name}")


def progress_wanted() -> bool:
    """`--progress`/`--no-progress` wherever given; otherwise on when stderr is a terminal
    and logs are text (a JSON log is read by programs)."""
    ctx = click.get_current_context(silent=True)
    values = _values(ctx) if ctx is not None else {}
    chosen = values.get("progress")
    if chosen is not None:
        return bool(chosen)
    return sys.stderr.isatty() and values.get("log_format", "text") == "text"


def bootstrap_given() -> str | None:
    """`-b/--bootstrap` wherever it was given, else None."""
    ctx = click.get_current_context(silent=True)
    return _values(ctx).get("bootstrap") if ctx is not None else None


def load(name_or_path: str | os.PathLike[str]) -> Config:
    """The command's config, with `-b/--bootstrap` (wherever it was given) applied."""
    return load_config(name_or_path, bootstrap=bootstrap_given())


def kafka_clients() -> KafkaClients:
    """Where a command's Kafka clients come from: librdkafka, unless whoever invoked the
    group handed in others as its `obj` (`CliRunner().invoke(cli, args, obj=MemoryBroker())`
    in the unit tests)."""
    ctx = click.get_current_context(silent=True)
    given = ctx.find_root().obj if ctx is not None else None
    return cast(KafkaClients, given) if given is not None else REAL_CLIENTS
