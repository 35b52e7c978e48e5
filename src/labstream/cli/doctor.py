"""`labstream doctor`: is everything ready for a role? One line per check."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from labstream.cli.common import config_option
from labstream.cli.globals import bootstrap_given
from labstream.doctor import DoctorSettings, Status, render_json, render_text, run_doctor
from labstream.doctor.check import ROLES

__all__ = ["doctor"]


@click.command()
@config_option
@click.option("-t", "--topic", default=None, help="Check this topic (and TOPIC.receipts) too.")
@click.option(
    "--role", type=click.Choice(ROLES), default="watch", show_default=True, help="What this machine runs."
)
@click.option(
    "--folder",
    type=click.Path(path_type=Path),
    default=None,
    help="The folder watched (readable) or written (writable, free space).",
)
@click.option(
    "-g", "--group", default=None, help="Consumer group of download/process [default: from the config]."
)
@click.option("--chunk-size", type=int, default=None, help="Chunk size to check [chunk_size in [labstream]].")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(
    config_name: str,
    topic: str | None,
    role: str,
    folder: Path | None,
    group: str | None,
    chunk_size: int | None,
    as_json: bool,
) -> None:
    """Check the config, the cluster, the topic, this principal's rights, limits, clock and
    this machine for ROLE: one line per check, each failure naming its fix. Exit 0 only when
    every check passes. Writes nothing to Kafka."""
    bootstrap = bootstrap_given()
    settings = DoctorSettings(config_name, topic, role, folder, group, chunk_size, bootstrap=bootstrap)
    checks = run_doctor(settings)
    click.echo(render_json(checks) if as_json else render_text(checks, sys.stdout.encoding))
    if any(c.status is Status.FAIL for c in checks):
        sys.exit(1)
