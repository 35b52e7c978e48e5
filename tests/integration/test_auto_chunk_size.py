"""With no --chunk-size, upload picks the largest power of two the topic's limit takes (up to
4 MiB) and says so in one INFO line. Real broker, the real CLI."""

from __future__ import annotations

import os
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from .conftest import labstream


def make_topic(bootstrap: str, topic: str, max_message_bytes: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, 1, 1, config={"max.message.bytes": str(max_message_bytes)})
    admin.create_topics([new])[topic].result(30)


def test_upload_chooses_the_chunk_size_from_the_topics_limit(
    tmp_path: Path, config_file: Path, topic: str, bootstrap: str
) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(5 << 20))
    # A big limit on both sides: the 4 MiB cap applies.
    make_topic(bootstrap, f"{topic}-big", 16 << 20)
    big = tmp_path / "big.config"
    big.write_text(
        config_file.read_text().replace("[producer]\n", "[producer]\nmessage.max.bytes = 20000000\n")
    )
    done = labstream("upload", data, "-t", f"{topic}-big", "-c", big)
    assert "chunk size 4194304 bytes" in done.stderr and "chunks=2 " in done.stderr
    # A small topic limit: the largest power of two whose message fits under it. The broker
    # checks whole record batches against it, so labstream keeps batch.size under it too.
    make_topic(bootstrap, f"{topic}-small", 300_000)
    small = tmp_path / "small.config"
    small.write_text(config_file.read_text().replace("[producer]\n", "[producer]\nbatch.size = 300000\n"))
    done = labstream("upload", data, "-t", f"{topic}-small", "-c", config_file)
    assert "chunk size 262144 bytes" in done.stderr and "limit of 300000 bytes" in done.stderr
    assert "chunks=20 " in done.stderr
    # Given on the command line: no choice made.
    done = labstream("upload", data, "-t", f"{topic}-small", "-c", small, "--chunk-size", "65536")
    assert "chunk size" not in done.stderr and "chunks=80 " in done.stderr
