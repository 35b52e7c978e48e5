"""The outage log filter and the static membership settings (issue 18)."""

from __future__ import annotations

import logging
from pathlib import Path

from labstream.config import Config
from labstream.kafka import consumer_settings, member_for_thread, static_membership
from labstream.kafka.quiet import OutageFilter


def record(message: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("labstream.librdkafka", level, __file__, 1, message, None, None)


def test_outage_filter_passes_one_line_per_condition_per_interval() -> None:
    now = [0.0]
    quiet = OutageFilter(interval=10.0, clock=lambda: now[0])
    passed = []
    for step in range(200):  # 20 s of reconnect failures every 100 ms, numbers changing
        now[0] = step / 10
        passed.append(quiet.filter(record(f"Connect to 127.0.0.1:{step} failed (after {step}ms)")))
    assert passed.count(True) == 2
    assert quiet.filter(record("another condition"))
    assert quiet.filter(record("info lines always pass", logging.INFO))
    assert quiet.recovered() is not None and quiet.recovered() is None  # one "back" per outage


def test_static_membership_is_stable_per_folder_and_group_and_only_where_asked(tmp_path: Path) -> None:
    config = Config("test", {"cluster": {"bootstrap.servers": "127.0.0.1:1"}})
    plain = consumer_settings(config, "g")
    assert "group.instance.id" not in plain  # status readers and receipt collectors
    first = static_membership(plain, config, tmp_path / "out")
    assert (
        first["group.instance.id"] == static_membership(plain, config, tmp_path / "out")["group.instance.id"]
    )
    assert first["group.instance.id"] != static_membership(plain, config, tmp_path / "x")["group.instance.id"]
    assert len(member_for_thread(first, 7)["group.instance.id"]) <= 249
    assert (
        member_for_thread(first, 0)["group.instance.id"] != member_for_thread(first, 1)["group.instance.id"]
    )


def test_static_membership_can_be_overridden_or_turned_off(tmp_path: Path) -> None:
    for value, expected in (("mine", "mine"), ("none", None)):
        config = Config(
            "test",
            {"cluster": {"bootstrap.servers": "127.0.0.1:1"}, "consumer": {"group.instance.id": value}},
        )
        plain = consumer_settings(config, "g")
        assert "group.instance.id" not in plain
        assert static_membership(plain, config, tmp_path).get("group.instance.id") == expected


def test_timed_out_requests_librdkafka_retries_are_information_not_problems() -> None:
    quiet = OutageFilter(interval=10.0, clock=lambda: 0.0)
    straggler = record(
        "REQTMOUT [rdkafka#consumer-8] [thrd:GroupCoordinator]: GroupCoordinator/1: Timed out 1 "
        "in-flight, 0 retry-queued, 0 out-queue, 0 partially-sent requests"
    )
    quiet.filter(straggler)
    assert straggler.levelno == logging.INFO and straggler.levelname == "INFO"
    assert not quiet.in_outage()  # a symptom alone starts no outage, so no "back" line follows


def test_one_condition_from_many_clients_and_connections_passes_once() -> None:
    quiet = OutageFilter(interval=10.0, clock=lambda: 0.0)
    lines = [
        "consumer error=127.0.0.1:31392/bootstrap: Connect to ipv4#127.0.0.1:31392 failed",
        "consumer error=127.0.0.1:31392/1: Connect to ipv4#127.0.0.1:31392 failed",
        "SESSTMOUT [rdkafka#consumer-8] [thrd:main]: Consumer group session timed out",
        "SESSTMOUT [rdkafka#consumer-9] [thrd:main]: Consumer group session timed out",
    ]
    assert [quiet.filter(record(line)) for line in lines] == [True, False, True, False]
    refused = record(
        "FAIL [rdkafka#producer-6] [thrd:127.0.0.1:31392/bootstrap]: 127.0.0.1:31392/bootstrap: "
        "Connect to ipv4#127.0.0.1:31392 failed: Connection refused (after 0ms in state CONNECT)",
        logging.ERROR,
    )
    quiet.filter(refused)
    assert refused.levelno == logging.INFO  # the error callback's line already says it


def test_the_new_group_protocol_is_accepted_without_the_classic_only_keys() -> None:
    config = Config(
        "test", {"cluster": {"bootstrap.servers": "127.0.0.1:1"}, "consumer": {"group.protocol": "consumer"}}
    )
    settings = consumer_settings(config, "g")  # librdkafka refused our classic defaults before
    assert settings["group.protocol"] == "consumer"
    assert not {"session.timeout.ms", "heartbeat.interval.ms"} & settings.keys()
    classic = consumer_settings(Config("test", {"cluster": {"bootstrap.servers": "127.0.0.1:1"}}), "g")
    assert classic["session.timeout.ms"] == "10000"


def test_a_failed_connection_is_one_line_not_the_log_twin_of_the_error_callback() -> None:
    quiet = OutageFilter(interval=10.0, clock=lambda: 0.0)
    twin = record(
        "FAIL [rdkafka#consumer-4] [thrd:127.0.0.1:9092/bootstrap]: 127.0.0.1:9092/bootstrap: "
        "Connect to ipv4#127.0.0.1:9092 failed: Connection refused (after 0ms in state CONNECT)",
        logging.ERROR,
    )
    quiet.filter(twin)
    assert twin.levelno == logging.INFO
    reported = logging.LogRecord(
        "labstream.kafka.consumer", logging.WARNING, __file__, 1, "consumer error=%s", ("Connect to",), None
    )
    assert quiet.filter(reported) and reported.levelno == logging.WARNING
