"""The `labstream` command: one click group, one thin module per subcommand."""

from __future__ import annotations

import click

from labstream import __version__
from labstream.cli.broker import broker
from labstream.cli.config import config
from labstream.cli.dashboard import dashboard
from labstream.cli.demo import demo
from labstream.cli.doctor import doctor
from labstream.cli.download import download
from labstream.cli.get import get
from labstream.cli.globals import KAFKA_COMMANDS, add_global_options, configure_logging
from labstream.cli.keygen import keygen
from labstream.cli.ls import ls
from labstream.cli.process import process
from labstream.cli.resend import resend
from labstream.cli.service import service
from labstream.cli.status import status
from labstream.cli.upload import upload
from labstream.cli.watch import watch
from labstream.errors import LabstreamError

__all__ = ["cli", "main"]


class _Group(click.Group):
    """Turns `LabstreamError` into one clear line (exit 1) and Ctrl+C into exit 130."""

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
for command in (
    broker,
    config,
    upload,
    watch,
    download,
    process,
    status,
    resend,
    service,
    keygen,
    demo,
    dashboard,
    ls,
    get,
    doctor,
):
    add_global_options(command, with_bootstrap=command.name in KAFKA_COMMANDS)
    cli.add_command(command)


def main() -> None:
    cli(prog_name="labstream")
