"""`labstream demo`: local broker, sample folder up, download elsewhere, verify, report."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from pathlib import Path

import click

from labstream import broker as local_broker
from labstream.cli.common import human_bytes
from labstream.cli.globals import kafka_clients
from labstream.config import load_config
from labstream.kafka import producer_settings
from labstream.runners import run_download
from labstream.settings import download_settings
from labstream.upload import Uploader, collect
from labstream.upload.uploader import raise_if_failed

SAMPLES = {
    "README.txt": b"Sample instrument output written by `labstream demo`.\n",
    "spectra/run 01 - Ti3C2 \u00b5-XRD.csv": b"two_theta,intensity\n"
    + b"".join(b"%d.%02d,%d\n" % (10 + i // 100, i % 100, (i * 7919) % 5000) for i in range(20000)),
    "images/scan_0001.raw": None,  # 5 MiB of random bytes: many chunks
    "images/deep/empty.dat": b"",
    "logs/instrument.log": b"2026-11-28T10:00:00 start\n" * 1000,
}


@click.command()
@click.option("--port", default=9092, show_default=True, help="Port of the local broker.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the sample and the copy [default: a new temporary folder].",
)
def demo(port: int, workdir: Path | None) -> None:
    """Run the whole job once on this machine and say what happened."""
    click.echo(f"1. starting the local Kafka broker on 127.0.0.1:{port} (first run fetches it)")
    state = local_broker.start(port)
    os.environ["LABSTREAM_BOOTSTRAP"] = state.bootstrap
    root = workdir or Path(tempfile.mkdtemp(prefix="labstream-demo-"))
    source, target = root / "instrument", root / "received"
    _write_samples(source)
    click.echo(f"2. wrote {len(SAMPLES)} sample files under {source}")
    config = load_config("local")
    topic = f"labstream-demo-{int(time.time())}"
    producer_conf = producer_settings(config)
    clients = kafka_clients()
    clients.ensure_topic(producer_conf, topic)
    with clients.producer(producer_conf) as producer:
        report = Uploader(producer, topic).upload(list(collect([source])))
    raise_if_failed(report)
    click.echo(
        f"3. uploaded {report.files} files ({human_bytes(report.bytes)}, {report.chunks} "
        f"chunks) to topic {topic}; every chunk acknowledged"
    )
    settings = download_settings(
        config,
        {
            "out_dir": target,
            "topic": topic,
            "group": f"{topic}-download",
            "exit_when_idle": 3.0,
            "receipts": False,
            "heartbeat_seconds": 0.0,
        },
    )
    downloaded = run_download(settings, threading.Event(), clients=clients)
    click.echo(f"4. downloaded {downloaded.files} verified files into {target}")
    _compare(source, target)


def _write_samples(source: Path) -> None:
    for relpath, content in SAMPLES.items():
        path = source / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(5 << 20) if content is None else content)


def _compare(source: Path, target: Path) -> None:
    bad = 0
    for relpath in SAMPLES:
        theirs = target / relpath
        mine = hashlib.sha256((source / relpath).read_bytes()).hexdigest()
        got = hashlib.sha256(theirs.read_bytes()).hexdigest() if theirs.exists() else "missing"
        ok = mine == got
        bad += not ok
        click.echo(f"   {'OK  ' if ok else 'FAIL'} {relpath}  sha256 {mine[:16]}...")
    if bad:
        raise click.ClickException(f"{bad} file(s) differ between {source} and {target}")
    click.echo(f"5. all {len(SAMPLES)} files are byte-identical (SHA-256) in {target}")
