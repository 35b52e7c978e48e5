"""The dashboard's store, views, readers' checks and web app, without a broker."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from labstream.dashboard.app import create_app
from labstream.dashboard.metrics import fleet_metrics
from labstream.dashboard.readers import heartbeat_handler, receipt_handler
from labstream.dashboard.store import MAX_INSTANCES, Store
from labstream.dashboard.views import fleet, search, throughput
from labstream.heartbeat import Heartbeat, RecentFile, Status
from labstream.kafka import Record
from labstream.receipts import Receipt

SHA = "ab" * 32
TOKEN = "s3cret-token-0123456789"


def beat(instance: str = "watch@pc1:/data", at: float | None = None, **status: Any) -> Heartbeat:
    role = instance.split("@")[0]
    now = time.time() if at is None else at
    return Heartbeat(instance, role, "pc1", 7, "0.1.0", now - 100, now, 10.0, "running", Status(**status))


def receipt(
    path: str = "a.tif", outcome: str = "verified", group: str = "archive", reason: str = ""
) -> Receipt:
    return Receipt(path, SHA, 100, outcome, group, "srv", reason, time.time())


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "d.sqlite") as opened:
        yield opened  # type: ignore[misc]


def test_instrument_shows_sent_then_verified_downstream(store: Store) -> None:
    store.add_heartbeats(
        [beat(topic="t", sent=1, recent=(RecentFile("a.tif", SHA, 100, "sent", time.time()),))]
    )
    store.add_receipts([("t", receipt())])
    (row,) = fleet(store)["instruments"]
    assert (
        row["state"] == "alive" and row["last_verified"] == "a.tif" and row["last_verified_by"] == "archive"
    )


def test_a_receipt_before_the_heartbeat_that_lists_the_file_still_credits_it(store: Store) -> None:
    store.add_receipts([("t", receipt(outcome="failed", reason="chunk 2/3 fails its checksum"))])
    store.add_heartbeats([beat(topic="t", recent=(RecentFile("a.tif", SHA, 100, "sent", time.time()),))])
    (row,) = fleet(store)["instruments"]
    assert row["downstream_failed"] == 1
    (failure,) = fleet(store)["failures"]
    assert failure["reason"] == "chunk 2/3 fails its checksum" and failure["source"] == "archive"


def test_redelivered_receipts_count_once(store: Store) -> None:
    for _ in range(3):
        store.add_receipts([("t", receipt())])
    assert fleet(store)["groups"][0]["verified"] == 1


def test_states_alive_stale_stopped(store: Store) -> None:
    now = time.time()
    store.add_heartbeats([beat("watch@a:/x", at=now)], received=now)
    store.add_heartbeats([beat("watch@b:/x", at=now - 31)], received=now - 31)
    stopped = beat("watch@c:/x", at=now)
    store.add_heartbeats([Heartbeat(**{**stopped.__dict__, "state": "stopped"})], received=now)
    # a sender whose clock runs ahead cannot look fresher than its arrival
    store.add_heartbeats([beat("watch@d:/x", at=now + 3600)], received=now - 40)
    states = {r["instance"]: r["state"] for r in fleet(store, now)["instruments"]}
    assert states == {
        "watch@a:/x": "alive",
        "watch@b:/x": "stale",
        "watch@c:/x": "stopped",
        "watch@d:/x": "stale",
    }


def test_consumers_show_group_lag_and_last_failure(store: Store) -> None:
    store.add_heartbeats([beat("download@srv:t/archive", topic="t", group="archive", verified=3)])
    store.add_receipts([("t", receipt("bad.bin", "failed", reason="bad.bin: chunk 2/3 fails its checksum"))])
    store.set_lag("archive", "t", 12, 2)
    (row,) = fleet(store)["consumers"]
    assert (row["lag_messages"], row["lag_files"], row["verified"]) == (12, 2, 3)
    assert row["last_reason"] == "chunk 2/3 fails its checksum"


def test_a_consumers_failures_are_files_with_a_readable_reason(store: Store) -> None:
    store.add_heartbeats([beat("download@srv:t/keyless", topic="t", group="keyless", failed=79)])
    line = (
        "chunk rejected topic=t partition=3 offset=65 reason=run1/a.dat: chunk 1/3: cannot decrypt "
        "(wrong key): sealed with key id 0011223344556677, which is not among the configured keys"
    )
    for i in range(10):
        for _ in range(3):  # one receipt per chunk today: still one failed file each
            store.add_receipts([("t", receipt(f"run1/{i}.dat", "failed", "keyless", line))])
    (row,) = fleet(store)["consumers"]
    assert (row["failed"], row["last_reason"]) == (10, "cannot decrypt: wrong key")
    assert fleet(store)["failures"][0]["reason"] == "cannot decrypt: wrong key"


def test_files_waiting_counts_sent_files_a_group_has_not_receipted(store: Store) -> None:
    recent = tuple(RecentFile(f"f{i}", SHA, 1, "sent", time.time()) for i in range(5))
    store.add_heartbeats([beat(topic="t", recent=recent)])
    store.add_receipts([("t", receipt("f1")), ("t", receipt("f2")), ("t", receipt("f3", group="other"))])
    assert store.files_waiting("archive", "t") == 3


def test_instances_are_capped(store: Store) -> None:
    store.add_heartbeats([beat(f"watch@h{i}:/x") for i in range(MAX_INSTANCES + 50)])
    assert len(fleet(store)["instruments"]) == MAX_INSTANCES


def test_search_finds_a_file_with_every_verdict(store: Store) -> None:
    store.add_heartbeats(
        [beat(topic="t", recent=(RecentFile("run7/sample-42.tif", SHA, 100, "sent", time.time()),))]
    )
    store.add_receipts(
        [("t", receipt("run7/sample-42.tif")), ("t", receipt("run7/sample-42.tif", group="s3"))]
    )
    (found,) = search(store, "sample-42")
    assert found["sent"]["host"] == "pc1" and [r["grp"] for r in found["receipts"]] == ["archive", "s3"]
    assert search(store, "%") == [] and search(store, "") == []
    for odd in ('"', '" OR "a', "sample-42.tif*", "NEAR(", "\\"):
        assert search(store, odd) == []  # the index's query syntax never leaks through
    assert [r["path"] for r in search(store, "42")] == ["run7/sample-42.tif"]  # short: a scan


def test_throughput_has_sixty_minutes(store: Store) -> None:
    store.add_receipts([("t", receipt())])
    series = throughput(store)
    assert len(series["t"]) == 60 and series["verified"][-1] == 100.0


def test_prune_forgets_old_receipts(store: Store) -> None:
    store.add_receipts([("t", receipt())], received=time.time() - 40 * 86400)
    store.prune(30)
    assert search(store, "a.tif") == []


def test_readers_count_and_skip_hostile_messages(store: Store) -> None:
    good = beat(topic="t").to_bytes()
    records = [Record("hb", 0, i, None, v) for i, v in enumerate([b"{", b"[" * 10**5, good, b"\x00" * 10**6])]
    heartbeat_handler(store)(records)
    bad_receipts = [
        b"{}",
        json.dumps({**json.loads(receipt().to_bytes()), "path": "x" * 5000}).encode(),
        json.dumps({**json.loads(receipt().to_bytes()), "group": "\ud800"}).encode(),
        json.dumps({**json.loads(receipt().to_bytes()), "size": -5}).encode(),
        b"[" * 100_000,
    ]
    receipt_handler(store)([Record("t.receipts", 0, i, None, v) for i, v in enumerate(bad_receipts)])
    receipt_handler(store)([Record("t.receipts", 0, 9, None, receipt().to_bytes())])
    view = fleet(store)
    assert view["rejected"] == {"rejected heartbeats": 3, "rejected receipts": 5}
    assert len(view["instruments"]) == 1 and view["groups"][0]["topic"] == "t"


def test_app_serves_page_api_vendored_js_and_security_headers(store: Store) -> None:
    store.add_heartbeats([beat(topic="t", last_file="<script>alert(1)</script>")])
    client = TestClient(create_app(store))
    page = client.get("/")
    assert page.status_code == 200 and "/static/uPlot.iife.min.js" in page.text
    assert "http" not in page.text.replace('lang="en"', "")  # no CDN links
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/uPlot.iife.min.js").status_code == 200
    assert client.get("/static/uPlot.LICENSE").text.startswith("The MIT License")
    assert client.get("/api/fleet").json()["instruments"][0]["last_file"] == "<script>alert(1)</script>"
    assert client.get("/api/search", params={"q": "nothing"}).json() == {"results": []}
    assert len(client.get("/api/throughput").json()["t"]) == 60
    assert client.get("/api/health").json() == {"ok": True, "errors": []}


def test_page_script_sets_text_never_html() -> None:
    script = (Path(__file__).parents[2] / "src/labstream/dashboard/static/app.js").read_text()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script


def test_token_is_required_when_set(store: Store) -> None:
    client = TestClient(create_app(store, token=TOKEN))
    assert client.get("/api/fleet").status_code == 401
    assert client.get("/?token=wrong", follow_redirects=False).status_code == 401
    assert client.get("/api/fleet", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    answer = client.get(f"/?token={TOKEN}", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    assert "httponly" in answer.headers["set-cookie"].lower()
    assert client.get("/api/fleet").status_code == 200  # the cookie now
    assert (
        TestClient(create_app(store, token=TOKEN), cookies={"labstream_dashboard": "x"}).get("/").status_code
        == 401
    )


def test_events_stream_pushes_the_view(store: Store) -> None:
    import threading

    store.add_heartbeats([beat(topic="t")])
    stop = threading.Event()
    client = TestClient(create_app(store, stop=stop))
    with client.stream("GET", "/events") as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            if line.startswith("data: "):
                view = json.loads(line.removeprefix("data: "))
                stop.set()
                break
    assert view["fleet"]["instruments"][0]["instance"] == "watch@pc1:/data"


def test_fleet_metrics_parse_with_prometheus_parser(store: Store) -> None:
    now = time.time()
    store.add_heartbeats([beat("watch@a:/x", at=now - 100, queued_files=7)], received=now - 100)
    store.add_receipts([("t", receipt(outcome="failed", reason="r"))])
    store.set_lag("archive", "t", 5, 1)
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(type("C", (), {"collect": lambda self: fleet_metrics(store)()})())
    text = generate_latest(registry).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    labels = (("group", ""), ("host", "pc1"), ("instance", "watch@a:/x"), ("role", "watch"), ("topic", ""))
    assert samples[("labstream_instance_up", labels)] == 0.0
    assert samples[("labstream_instance_backlog_files", labels)] == 7.0
    assert (
        samples[("labstream_receipts_total", (("group", "archive"), ("outcome", "failed"), ("topic", "t")))]
        == 1
    )
    assert samples[("labstream_consumer_lag_messages", (("group", "archive"), ("topic", "t")))] == 5


def test_summary_counts_states_files_failures_backlog_and_groups_behind(store: Store) -> None:
    now = time.time()
    sent = tuple(RecentFile(f"f{i}", f"{i:02x}" * 32, 1000, "sent", now - 600 + i) for i in range(6))
    store.add_heartbeats([beat("watch@a:/x", at=now, topic="t", queued_files=4, recent=sent)], received=now)
    store.add_heartbeats([beat("watch@b:/x", at=now - 300)], received=now - 300)
    old = Receipt("f0", "00" * 32, 1000, "verified", "archive", "srv", "", now - 2 * 86400)
    store.add_receipts([("t", old)])  # verified, but not in the last 24 h
    for i in (1, 2, 3):  # verified by two groups: still three files
        for group in ("archive", "mirror"):
            store.add_receipts(
                [("t", Receipt(f"f{i}", f"{i:02x}" * 32, 1000, "verified", group, "s", "", now))]
            )
    wrong_key = "f4: chunk 1/1: cannot decrypt (wrong key): sealed with key id 00, which is not among"
    for _ in range(3):  # a receipt per chunk: one file
        store.add_receipts([("t", Receipt("f4", "04" * 32, 1000, "failed", "archive", "s", wrong_key, now))])
    store.set_lag("archive", "t", 0, 2)
    view = fleet(store, now)
    got = view["summary"]
    assert got["instruments"] == {"alive": 1, "stale": 1, "stopped": 0}
    assert (got["verified_files"], got["verified_bytes"]) == (3, 3000)
    assert got["failed_files"] == 1
    assert got["top_reasons"] == [{"reason": "cannot decrypt: wrong key", "files": 1}]
    assert got["queued_files"] == 4
    assert got["oldest_unverified"]["path"] == "f5"
    assert got["behind"] == [{"grp": "archive", "topic": "t", "files": 2, "messages": 0}]
    assert got["attention"] == ["1 stale (no heartbeat)", "1 failed file(s) in 24 h"]


def test_last_verified_is_the_receipts_own_time_not_when_it_was_read(store: Store) -> None:
    now = time.time()
    store.add_heartbeats([beat(topic="t", recent=(RecentFile("a.tif", SHA, 100, "sent", now - 700),))])
    verified_at = now - 660
    store.add_receipts([("t", Receipt("a.tif", SHA, 100, "verified", "archive", "srv", "", verified_at))])
    (row,) = fleet(store)["instruments"]
    assert row["last_verified_at"] == verified_at


def test_search_with_a_nul_character_answers(store: Store) -> None:
    store.add_heartbeats([beat(topic="t", recent=(RecentFile("a.tif", SHA, 100, "sent", time.time()),))])
    client = TestClient(create_app(store))
    for query in ("a\x00b", "\x00\x00\x00", "a.tif\x00"):
        answer = client.get("/api/search", params={"q": query})
        assert answer.status_code == 200 and answer.json() == {"results": []}
    assert search(store, "a.tif")[0]["path"] == "a.tif"


def test_the_metrics_listener_needs_the_token_when_given_one() -> None:
    import urllib.error
    import urllib.request

    from labstream.metrics.exporter import MetricsServer, is_loopback

    with MetricsServer(("127.0.0.1", 0), lambda: iter(()), token=TOKEN) as server:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=10)
        assert refused.value.code == 401
        refused.value.close()
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")


def test_a_failure_without_the_files_digest_is_news_for_the_instrument_that_sent_the_path(
    store: Store,
) -> None:
    store.add_heartbeats([beat(topic="t", recent=(RecentFile("run1/a.dat", SHA, 100, "sent", time.time()),))])
    why = "run1/a.dat: chunk 1/2: cannot decrypt (wrong key): sealed with key id 00112233"
    file_id = "cd" * 32  # not the digest the watcher reported: what a failure may carry instead
    store.add_receipts(
        [("t", Receipt("run1/a.dat", file_id, 100, "failed", "old-key", "srv", why, time.time()))]
    )
    (row,) = fleet(store)["instruments"]
    assert (row["downstream_failed"], row["downstream_by"]) == (1, "old-key")
    assert row["downstream_reason"] == "cannot decrypt: wrong key"


def test_a_database_from_before_owners_opens_and_takes_beats(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE instances (instance TEXT PRIMARY KEY, role TEXT, host TEXT, pid INTEGER, "
        "version TEXT, started REAL, at REAL, interval REAL, state TEXT, folder TEXT, topic TEXT, "
        "grp TEXT, queued_files INTEGER, queued_bytes INTEGER, in_flight INTEGER, sent INTEGER, "
        "verified INTEGER, failed INTEGER, bytes INTEGER, rate REAL, last_file TEXT, last_file_at REAL, "
        "last_error TEXT, trust TEXT, received REAL, last_verified TEXT DEFAULT '', "
        "last_verified_at REAL DEFAULT 0, last_verified_by TEXT DEFAULT '', "
        "downstream_failed INTEGER DEFAULT 0)"
    )
    old.execute(
        "INSERT INTO instances (instance, role, host, pid, version, started, at, interval, state, "
        "trust, received, queued_files, failed) "
        "VALUES ('watch@old:/x', 'watch', 'old', 1, '0.1', 1, ?, 10, 'running', 'unsigned', ?, 0, 0)",
        (time.time(), time.time()),
    )
    old.commit()
    old.close()
    with Store(path) as upgraded:
        upgraded.add_heartbeats([beat("watch@old:/x"), beat("watch@new:/x")])
        assert {r["instance"]: r["refused"] for r in fleet(upgraded)["instruments"]} == {
            "watch@new:/x": 0,
            "watch@old:/x": 0,
        }


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (
            "chunk rejected topic=t partition=3 offset=65 reason=run1/a.dat: chunk 1/3: cannot decrypt "
            "(wrong key): sealed with key id 0011, which is not among the configured keys",
            "cannot decrypt: wrong key",
        ),
        ("a.dat: chunk 1/2: cannot decrypt (wrong key, or altered)", "cannot decrypt: wrong key or altered"),
        ("a.dat: chunk 1/2 is encrypted and no key is configured", "cannot decrypt: no key configured"),
        ("bad.bin: chunk 2/3 fails its checksum", "chunk 2/3 fails its checksum"),
        ("", ""),
    ],
)
def test_reasons_read_as_phrases_and_a_phrase_stays_itself(raw: str, shown: str) -> None:
    from labstream.dashboard.reasons import readable

    assert readable(raw) == shown
    assert readable(shown) == shown


def test_a_consumers_failed_files_metric_counts_files_not_chunks(store: Store) -> None:
    store.add_heartbeats([beat("download@srv:t/archive", topic="t", group="archive", failed=79)])
    for i in range(10):
        store.add_receipts([("t", receipt(f"f{i}", "failed", reason="x"))])
    samples = {
        (s.name, s.labels["role"]): s.value
        for f in fleet_metrics(store)()
        for s in f.samples
        if s.name == "labstream_instance_failed_files"
    }
    assert samples[("labstream_instance_failed_files", "download")] == 10


def test_topic_readers_feed_the_store_from_the_in_memory_broker_and_survive_garbage(store: Store) -> None:
    from labstream.dashboard.readers import TopicReader
    from labstream.kafka.memory import MemoryBroker

    broker = MemoryBroker()
    with broker.producer() as producer:
        producer.send(
            "labstream.heartbeats", b"w", beat(source="pc-xrd", topic="data").to_bytes(), lambda _e: None
        )
        producer.send("labstream.heartbeats", b"x", b"not a heartbeat", lambda _e: None)
        producer.send("data.receipts", b"a.tif", receipt().to_bytes(), lambda _e: None)
        producer.flush(5.0)
    beats = TopicReader(
        {"group.id": "d"}, ["labstream.heartbeats"], heartbeat_handler(store), name="b", clients=broker
    )
    receipts = TopicReader(
        {"group.id": "d"}, ["data.receipts"], receipt_handler(store), name="r", clients=broker
    )
    with beats, receipts:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (fleet(store)["instruments"] and broker.committed("d")):
            time.sleep(0.05)
    (instrument,) = fleet(store)["instruments"]
    assert instrument["source"] == "pc-xrd" and not beats.alive and not receipts.error
    assert broker.committed("d")  # offsets stored only after the batch was handled


def test_a_reader_whose_store_fails_says_why_and_reads_on(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    import sqlite3

    from labstream.dashboard.readers import TopicReader
    from labstream.kafka.memory import MemoryBroker

    broker = MemoryBroker()
    with broker.producer() as producer:
        producer.send("labstream.heartbeats", b"w", beat().to_bytes(), lambda _e: None)
        producer.flush(5.0)
    calls: list[int] = []

    def flaky(records: list[Record]) -> None:
        calls.append(len(records))
        if len(calls) == 1:
            raise sqlite3.OperationalError("database or disk is full")
        heartbeat_handler(store)(records)

    reader = TopicReader({"group.id": "d"}, ["labstream.heartbeats"], flaky, name="b", clients=broker)
    reader.restart_seconds = 0.05
    with reader:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not fleet(store)["instruments"]:
            time.sleep(0.05)
    assert reader.restarts == 1 and len(calls) == 2  # the batch is read again: its offsets were not stored
    assert fleet(store)["instruments"] and "dashboard reader retrying" in caplog.text


def _live(size: int, group: str = "archive", file_id: str = "ab" * 16) -> Receipt:
    return Receipt(
        "run1/shots.log", SHA, size, "live", group, "srv", "", time.time(), source="pc-1", file_id=file_id
    )


def test_a_live_file_shows_the_largest_prefix_verified_so_far_and_is_no_failure(store: Store) -> None:
    store.add_receipts([("t", _live(3 << 20)), ("t", _live(1 << 20)), ("t", _live(5 << 20))])
    view = fleet(store)
    assert [(f["path"], f["source"], f["grp"], f["size"]) for f in view["live"]] == [
        ("run1/shots.log", "pc-1", "archive", 5 << 20)
    ]
    assert view["failures"] == [] and view["groups"] == []  # progress, not a verdict


def test_the_verdict_of_a_live_send_ends_its_live_row(store: Store) -> None:
    store.add_receipts([("t", _live(3 << 20)), ("t", _live(4 << 20, file_id="cd" * 16))])
    closed = Receipt(
        "run1/shots.log",
        SHA,
        6 << 20,
        "verified",
        "archive",
        "srv",
        "",
        time.time(),
        source="pc-1",
        file_id="ab" * 16,
    )
    store.add_receipts([("t", closed)])
    assert [(f["size"]) for f in fleet(store)["live"]] == [4 << 20]  # the other send is still live
    assert fleet(store)["groups"][0]["verified"] == 1
