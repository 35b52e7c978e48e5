"""Processors on the real broker; the s3 processor against a real S3-compatible server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import labstream
from .s3server import CREDENTIAL, IDENTITY, s3proxy
from .test_roundtrip import tree
from .watchproc import wait_for

COPYING_PROCESSOR = '''
import os, shutil, time
from pathlib import Path

class Copy:
    """Copies each file to OUT, logging each call; slow, or failing on request."""
    def __init__(self, out, delay="0", fail_on=""):
        self.out, self.delay, self.fail_on = Path(out), float(delay), fail_on
    def process(self, file):
        with open(self.out.parent / "calls.log", "a") as log:
            log.write(file.relpath + "\\n")
        time.sleep(self.delay)
        if self.fail_on and file.relpath == self.fail_on and not (self.out.parent / "fixed").exists():
            raise RuntimeError("instrument format not understood")
        target = self.out / file.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file.path, target)
'''


@pytest.fixture
def processor_file(tmp_path: Path) -> Path:
    path = tmp_path / "copy_processor.py"
    path.write_text(COPYING_PROCESSOR)
    return path


def upload_tree(src: Path, config: Path, topic: str, count: int = 20) -> None:
    for i in range(count):
        path = src / f"run{i % 3}" / f"sample {i}.dat"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(1000 + i * 5000))
    labstream("upload", src, "--config", config, "--topic", topic, "--chunk-size", "8192")


def process_args(processor_file: Path, config: Path, topic: str, tmp_path: Path, *options: str) -> list[str]:
    return [
        "process",
        f"{processor_file}:Copy",
        "--config",
        str(config),
        "--topic",
        topic,
        "--workdir",
        str(tmp_path / "work"),
        "-o",
        f"out={tmp_path / 'out'}",
        *options,
    ]


def test_failing_file_leaves_the_others_processed_then_reprocessed(
    tmp_path: Path, config_file: Path, topic: str, processor_file: Path
) -> None:
    src = tmp_path / "src"
    upload_tree(src, config_file, topic)
    args = process_args(
        processor_file,
        config_file,
        topic,
        tmp_path,
        "-o",
        "fail_on=run1/sample 4.dat",
        "--retries",
        "1",
        "--exit-when-idle",
        "4",
    )
    done = labstream(*args, check=False)
    assert done.returncode == 2 and "processed 19 file(s), 1 failed" in done.stdout
    assert "not processed, kept for --reprocess-failed file=run1/sample 4.dat" in done.stderr
    assert (tmp_path / "calls.log").read_text().count("run1/sample 4.dat") == 2  # first try + 1 retry
    expected = tree(src)
    del expected["run1/sample 4.dat"]
    assert tree(tmp_path / "out") == expected
    (tmp_path / "fixed").touch()
    again = labstream(*args, "--reprocess-failed")
    assert "processed 1 file(s), 0 failed (1 reprocessed)" in again.stdout
    assert tree(tmp_path / "out") == tree(src)


def test_processor_killed_mid_stream_and_restarted_loses_nothing(
    tmp_path: Path, config_file: Path, topic: str, processor_file: Path
) -> None:
    src = tmp_path / "src"
    upload_tree(src, config_file, topic, count=30)
    args = process_args(processor_file, config_file, topic, tmp_path, "-o", "delay=0.3")
    first = subprocess.Popen(
        [sys.executable, "-m", "labstream", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(lambda: (tmp_path / "out").exists() and len(tree(tmp_path / "out")) >= 8)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert len(tree(tmp_path / "out")) < 30
    labstream(*args, "--exit-when-idle", "4")
    assert tree(tmp_path / "out") == tree(src)
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert set(calls) == set(tree(src))
    assert len(calls) <= 30 + 3, "only what was in flight at the kill runs twice"


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with s3proxy(tmp_path_factory.mktemp("s3")) as endpoint:
        yield endpoint


def test_s3_processor_puts_byte_identical_objects(
    tmp_path: Path, config_file: Path, topic: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    from botocore.config import Config

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", IDENTITY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIAL)
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        config=Config(
            request_checksum_calculation="when_required", response_checksum_validation="when_required"
        ),
    )
    client.create_bucket(Bucket="lab-archive")
    src = tmp_path / "src"
    upload_tree(src, config_file, topic, count=6)
    (src / "big").mkdir()
    (src / "big" / "image.raw").write_bytes(os.urandom(40 * 1024 * 1024))  # multipart
    labstream("upload", src / "big", "--config", config_file, "--topic", topic)
    args = [
        "process",
        "s3",
        "--config",
        config_file,
        "--topic",
        topic,
        "-o",
        "bucket=lab-archive",
        "-o",
        "prefix=xrd",
        "-o",
        f"endpoint_url={s3_endpoint}",
        "--exit-when-idle",
        "4",
    ]
    assert "processed 7 file(s), 0 failed" in labstream(*args, "--workdir", tmp_path / "work").stdout
    expected = {
        **{k: v for k, v in tree(src).items() if not k.startswith("big/")},
        "image.raw": tree(src)["big/image.raw"],
    }
    import hashlib

    found = {}
    for item in client.list_objects_v2(Bucket="lab-archive", Prefix="xrd/")["Contents"]:
        if item["Key"].endswith("/"):
            continue  # folder markers of S3Proxy's filesystem backend
        body = client.get_object(Bucket="lab-archive", Key=item["Key"])
        found[item["Key"].removeprefix("xrd/")] = hashlib.sha256(body["Body"].read()).hexdigest()
        name = item["Key"].removeprefix("xrd/")
        assert body["Metadata"].get("sha256") == found[name], (item["Key"], body["Metadata"])
    assert found == expected
    # A second group over the same topic finds every object already there and skips it.
    again = labstream(*args, "--group", f"second-{topic}", "--workdir", tmp_path / "work2", check=False)
    assert again.returncode == 0 and again.stderr.count("object already holds this file") == 7
