"""The `labstream` command: one click group, one thin module per subcommand."""

from __future__ import annotations

import logging
import sys

import click

from labstream import __version__
from labstream.cli.broker import broker
from labstream.cli.config import config
from labstream.cli.dashboard import dashboard
from labstream.cli.demo import demo
from labstream.cli.doctor import doctor
from labstream.cli.download import download
from labstream.cli.get import get
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


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="labstream")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
def cli(verbose: int, quiet: bool) -> None:
    """Stream laboratory instrument files through Apache Kafka, verified end to end."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if verbose < 2:
        logging.getLogger("labstream.librdkafka").setLevel(logging.WARNING)


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
    cli.add_command(command)


def main() -> None:
    cli(prog_name="labstream")
