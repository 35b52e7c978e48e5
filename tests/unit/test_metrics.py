"""--metrics-port: a real HTTP scrape, parsed with prometheus_client's own text parser."""

from __future__ import annotations

import logging
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from labstream.errors import ConfigError
from labstream.heartbeat import Status
from labstream.metrics import CHUNK_LATENCY, ErrorLog
from labstream.metrics.exporter import MetricsServer, parse_address, process_metrics


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        s.name + str(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_scrape_shows_counts_backlog_latency_errors_and_lag() -> None:
    status = Status(sent=4, failed=1, bytes=4096, queued_files=3, queued_bytes=30, in_flight=2)
    CHUNK_LATENCY.observe(0.02)
    with ErrorLog() as errors:
        logging.getLogger("labstream.download.assembler").error("file failed verification file=%s", "x")
        collect = process_metrics("watch", lambda: status, errors, lambda: [("g", "t", 17)])
        with MetricsServer(("127.0.0.1", 0), collect) as server:
            samples = scrape(server.port)
    assert samples["labstream_files_sent_total[]"] == 4
    assert samples["labstream_files_failed_total[]"] == 1
    assert samples["labstream_backlog_files[]"] == 3
    assert samples["labstream_in_flight_files[]"] == 2
    assert samples["labstream_chunk_delivery_seconds_count[]"] >= 1
    assert samples["labstream_chunk_delivery_seconds_bucket[('le', '0.025')]"] >= 1
    assert samples["labstream_log_events_total[('kind', 'download.assembler'), ('level', 'error')]"] == 1
    assert samples["labstream_consumer_lag_messages[('group', 'g'), ('topic', 't')]"] == 17
    assert samples["labstream_build_info[('role', 'watch'), ('version', '0.1.0')]"] == 1
    assert errors.last_error == "file failed verification file=x"


@pytest.mark.parametrize("value", ["x", "70000", "host:", "-1"])
def test_bad_metrics_address_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError):
        parse_address(value)


def test_metrics_address_defaults_to_localhost() -> None:
    assert parse_address("9108") == ("127.0.0.1", 9108)
    assert parse_address("0.0.0.0:9108") == ("0.0.0.0", 9108)
