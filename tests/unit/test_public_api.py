"""`labstream`'s public API: every name in `__all__` resolves, and a stage runs from Python."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import labstream
from labstream.kafka.memory import MemoryBroker


def test_every_public_name_resolves() -> None:
    for name in labstream.__all__:
        assert getattr(labstream, name) is not None, name
    with pytest.raises(AttributeError):
        labstream.no_such_thing  # noqa: B018


def test_a_lab_drives_upload_and_download_from_python(tmp_path: Path) -> None:
    config_file = tmp_path / "lab.config"
    config_file.write_text("[cluster]\nbootstrap.servers = 127.0.0.1:1\n")
    config = labstream.load_config(str(config_file))
    (tmp_path / "run1.csv").write_text("1,2,3\n")
    broker = MemoryBroker()
    upload = labstream.upload_settings(config, {"topic": "xrd", "source": "pc-1"})
    sent = labstream.run_upload(
        upload, [labstream.SourceFile(tmp_path / "run1.csv", "run1.csv")], clients=broker
    )
    assert sent.report.files == 1
    download = labstream.download_settings(
        config, {"out_dir": tmp_path / "archive", "topic": "xrd", "exit_when_idle": 0.5, "receipts": False}
    )
    report = labstream.run_download(download, threading.Event(), clients=broker)
    assert report.files == 1 and (tmp_path / "archive" / "run1.csv").read_text() == "1,2,3\n"
