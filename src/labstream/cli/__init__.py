"""The `labstream` command: one click group, one thin module per subcommand."""

from __future__ import annotations

import importlib

import click

from labstream import __version__
from labstream.cli.globals import KAFKA_COMMANDS, add_global_options, configure_logging
from labstream.errors import LabstreamError

__all__ = ["cli", "main"]


# Every subcommand, each in the module of its name under labstream.cli. A command's module is
# imported when the command is asked for: `labstream watch` loads no download, process,
# doctor or dashboard code, nor rich unless it draws (issue 29, a fleet of watchers on one
# machine: 38.6 -> 33.0 MiB RSS once imported; tests/unit/test_imports.py).
COMMANDS = (
    "broker",
    "config",
    "upload",
    "watch",
    "download",
    "process",
    "status",
    "resend",
    "service",
    "keygen",
    "demo",
    "dashboard",
    "ls",
    "get",
    "doctor",
)


class _Group(click.Group):
    """Loads each subcommand on first use; turns `LabstreamError` into one clear line (exit 1)
    and Ctrl+C into exit 130."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            command = getattr(importlib.import_module(f"{__name__}.{cmd_name}"), cmd_name)
            add_global_options(command, with_bootstrap=cmd_name in KAFKA_COMMANDS)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except LabstreamError as exc:
            raise click.ClickException(str(exc)) from exc
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="labstream")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Stream laboratory instrument files through Apache Kafka, verified end to end.

    -v/-q/--log-format (and -b on the commands that talk to Kafka) may also follow the
    command's name.
    """
    configure_logging(ctx)


add_global_options(cli, with_bootstrap=True)


def main() -> None:
    cli(prog_name="labstream")
