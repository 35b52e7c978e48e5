"""The local broker: ports that cannot collide, clear errors, quiet logs."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from labstream import broker
from labstream.broker.local import _ephemeral_range, state_dir
from labstream.errors import BrokerSetupError

from .conftest import labstream

PORT = 22600  # and PORT + 10000: both below the ephemeral range
NEAR_PORT = PORT + 10000  # where the old rule put PORT's controller


@pytest.fixture
def fresh_brokers() -> Iterator[None]:
    for port in (PORT, NEAR_PORT):
        broker.stop(port)
        shutil.rmtree(state_dir(port), ignore_errors=True)
    yield
    for port in (PORT, NEAR_PORT):
        broker.stop(port)
        shutil.rmtree(state_dir(port), ignore_errors=True)


def test_a_port_held_by_another_program_is_named() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(BrokerSetupError, match=rf"port {port} is in use by another program"):
            broker.start(port)
        done = labstream("broker", "start", "--port", port, check=False)
    assert done.returncode == 1
    assert f"port {port} is in use by another program" in done.stderr
    assert "Traceback" not in done.stderr


def test_two_local_brokers_never_collide_and_start_quietly(fresh_brokers: None, tmp_path: Path) -> None:
    first = broker.start(PORT)
    controller = int((state_dir(PORT) / "controller.port").read_text())
    assert controller not in (PORT, NEAR_PORT)
    low, high = _ephemeral_range()
    assert not low <= controller <= high  # no client connection can be holding it at a restart
    second = broker.start(NEAR_PORT)  # used to fail: "Required feature not supported by broker"
    assert first.running and broker.status(PORT).running and second.running
    with pytest.raises(BrokerSetupError, match=rf"port {controller} is in use by another program"):
        broker.start(controller)

    # log4j2 is configured (no "Reconfiguration failed"), the log is the rotated broker.log
    assert "ERROR" not in (state_dir(PORT) / "broker.out").read_text()
    assert "Kafka Server started" in (state_dir(PORT) / "broker.log").read_text()

    # The coordinator was ready before start returned: the first idempotent upload is quiet.
    config = tmp_path / "fresh.config"
    config.write_text(f"[cluster]\nbootstrap.servers = 127.0.0.1:{NEAR_PORT}\n")
    sample = tmp_path / "sample.txt"
    sample.write_text("first upload on a fresh broker\n")
    done = labstream("upload", sample, "-t", "first-upload", "-c", config)
    assert "Failed to acquire idempotence PID" not in done.stderr
    assert "WARNING" not in done.stderr, done.stderr


def test_a_cluster_id_beginning_with_a_dash_formats(tmp_path: Path) -> None:
    """One random base64 id in 64 begins with "-"; StorageTool read "-t -abc" as a missing
    value and the broker (and the SASL test broker) failed to start."""
    from labstream.broker.jars import kafka_libs, require_java
    from labstream.broker.local import format_storage

    properties = tmp_path / "server.properties"
    properties.write_text(
        "process.roles=broker,controller\nnode.id=1\n"
        "controller.quorum.voters=1@127.0.0.1:39999\n"
        "listeners=PLAINTEXT://127.0.0.1:39998,CONTROLLER://127.0.0.1:39999\n"
        f"controller.listener.names=CONTROLLER\nlog.dirs={tmp_path / 'data'}\n"
    )
    format_storage(require_java(), f"{kafka_libs()}/*", properties, tmp_path, "-73Rtm_TSlGTBvofDxHSug")
    assert "cluster.id=-73Rtm_TSlGTBvofDxHSug" in (tmp_path / "data" / "meta.properties").read_text()
