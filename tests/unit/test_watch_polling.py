"""`--polling`: new files are found by stat-ing the tree, for shares where OS events are lost."""

from __future__ import annotations

import threading
from pathlib import Path

from click.testing import CliRunner

from labstream.cli import cli
from labstream.watch import DirectoryWatcher, ReadyFile


def test_a_polling_watcher_finds_a_new_file_without_events_or_rescans(tmp_path: Path) -> None:
    found: list[ReadyFile] = []
    seen = threading.Event()

    def on_ready(ready: ReadyFile) -> None:
        found.append(ready)
        seen.set()

    watcher = DirectoryWatcher(
        tmp_path, on_ready, is_known=lambda *_: False, settle_seconds=0.2, rescan_seconds=3600, polling=True
    )
    assert type(watcher._observer).__name__ == "PollingObserver"
    with watcher:
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "frame.raw").write_bytes(b"x" * 1000)
        assert seen.wait(15), "the polling observer did not report the new file"
    assert [r.relpath for r in found] == ["sub/frame.raw"]


def test_watch_help_offers_polling() -> None:
    result = CliRunner().invoke(cli, ["watch", "--help"])
    assert "--polling / --events" in result.output and "SMB/NFS" in result.output


def test_polling_comes_from_the_config_file_or_the_command_line(tmp_path: Path) -> None:
    from labstream.config import load_config
    from labstream.settings import watch_settings

    folder = tmp_path / "instrument"
    folder.mkdir()
    config = tmp_path / "share.config"
    config.write_text(
        f"[cluster]\nbootstrap.servers = 127.0.0.1:1\n[labstream]\nfile_directory = {folder}\n"
        f"topic_name = t\nstate = {tmp_path / 'state'}\npolling = yes\n"
    )
    assert watch_settings(load_config(config), {}).stream.polling is True
    assert watch_settings(load_config(config), {"polling": False}).stream.polling is False
