"""`labstream broker start|stop|status`: the local single-node Kafka for trying and testing."""

from __future__ import annotations

import click

from labstream import broker as local_broker

port_option = click.option("--port", default=9092, show_default=True, help="Client port on 127.0.0.1.")


@click.group()
def broker() -> None:
    """Run a local single-node Apache Kafka broker (KRaft) on 127.0.0.1."""


@broker.command()
@port_option
def start(port: int) -> None:
    """Start the broker (fetching it once with Maven) unless one already runs on PORT."""
    status = local_broker.start(port)
    click.echo(f"Kafka broker running at {status.bootstrap} (log: {status.log})")


@broker.command()
@port_option
def stop(port: int) -> None:
    """Stop the broker that `broker start` started on PORT."""
    stopped = local_broker.stop(port)
    click.echo("broker stopped" if stopped else f"no broker started by labstream on port {port}")


@broker.command()
@port_option
def status(port: int) -> None:
    """Say whether a broker answers on PORT (exit 1 if not)."""
    state = local_broker.status(port)
    if state.running:
        pid = f" pid {state.pid}" if state.pid else " (not started by labstream)"
        click.echo(f"running at {state.bootstrap}{pid}")
    else:
        click.echo(f"not running at {state.bootstrap}")
        raise SystemExit(1)
