"""`labstream dashboard`: the whole fleet on one live web page."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import click

from labstream.cli.common import config_option, stop_on_signals, trusted_keys_option
from labstream.cli.globals import kafka_clients, load
from labstream.errors import ConfigError
from labstream.heartbeat import DEFAULT_HEARTBEAT_TOPIC
from labstream.receipts.keys import trusted_keys
from labstream.receipts.signing import heartbeat_verifier
from labstream.upload.ledger import default_state_dir


@click.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8470, show_default=True, help="Port to listen on (0: any free port).")
@click.option(
    "--state",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the dashboard's SQLite database [default: per-user state folder].",
)
@click.option(
    "--heartbeat-topic",
    default=DEFAULT_HEARTBEAT_TOPIC,
    show_default=True,
    envvar="LABSTREAM_HEARTBEAT_TOPIC",
    help="Topic the heartbeats are on [env var: LABSTREAM_HEARTBEAT_TOPIC].",
)
@click.option(
    "--receipts-topic",
    "receipts_topics",
    multiple=True,
    help="Receipts topic to read (repeatable) [default: every topic named *.receipts].",
)
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Require this access token [env var: LABSTREAM_DASHBOARD_TOKEN].",
)
@click.option("--keep-days", default=30.0, show_default=True, help="Forget receipts older than this.")
@click.option(
    "--metrics-port", default=None, metavar="[HOST:]PORT", help="Serve fleet metrics for Prometheus."
)
@trusted_keys_option
def dashboard(
    config_name: str,
    host: str,
    port: int,
    state: Path | None,
    heartbeat_topic: str,
    receipts_topics: tuple[str, ...],
    token_file: Path | None,
    keep_days: float,
    metrics_port: str | None,
    receipts_trusted_keys: str | None,
) -> None:
    """Serve a live web page of every watcher, downloader and processor, their backlog,
    lag and failures, and where each file is. Binds to 127.0.0.1 unless --host."""
    try:
        from labstream.dashboard.server import DashboardSettings, run_dashboard
        from labstream.metrics.exporter import parse_address
    except ImportError as exc:
        raise ConfigError(f"the dashboard needs: pip install 'labstream[dashboard]' ({exc})") from exc
    config = load(config_name)
    trusted = trusted_keys(config, receipts_trusted_keys)
    settings = DashboardSettings(
        state=state or default_state_dir(Path("dashboard"), heartbeat_topic),
        host=host,
        port=port,
        heartbeat_topic=heartbeat_topic,
        receipts_topics=receipts_topics,
        token=_token(token_file),
        keep_days=keep_days,
        metrics=parse_address(metrics_port) if metrics_port else None,
    )
    stop = threading.Event()
    with stop_on_signals(stop) as signalled:
        run_dashboard(
            config,
            settings,
            stop=stop,
            on_ready=_announce,
            # With no trusted key still checked: a good signature shows as "untrusted key".
            verify=heartbeat_verifier(trusted),
            clients=kafka_clients(),
        )
    sys.exit(signalled["code"])


def _announce(url: str) -> None:
    click.echo(f"dashboard at {url}", err=True)  # stderr: unbuffered, so a supervisor sees it at once


def _token(path: Path | None) -> str | None:
    token = path.read_text(encoding="utf-8").strip() if path else os.environ.get("LABSTREAM_DASHBOARD_TOKEN")
    if token is not None and len(token) < 16:
        raise ConfigError("the dashboard token must be at least 16 characters")
    return token or None
