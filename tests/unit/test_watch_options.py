from __future__ import annotations

from pathlib import Path

import pytest

from labstream.config import load_config
from labstream.errors import ConfigError
from labstream.settings import check_state_dir, resolve
from labstream.watch import Filters


def test_seed_section_options_and_command_line_precedence(tmp_path: Path) -> None:
    (tmp_path / "kafka.config").write_text("[cluster]\nbootstrap.servers = a:1\n[producer]\n")
    path = tmp_path / "svc.config"
    path.write_text(
        "[openmsi_directory_stream_service]\nfile_directory = /data/xrd\n"
        "cluster_producer_config = kafka.config\ntopic_name = xrd\nn_threads = 3\n"
        "chunk_size = 65536\nnew_files_only = False\nexclude = *.lock, *.bak\n"
    )
    config = load_config(path)
    options = resolve(config, "watch", {"n_threads": 7})
    assert options["file_directory"] == "/data/xrd" and options["topic_name"] == "xrd"
    assert options["n_threads"] == 7  # the command line wins
    assert options["chunk_size"] == 65536 and options["new_files_only"] is False
    assert options["exclude"] == ("*.lock", "*.bak") and options["queue_max_size"] == 3000
    assert config.producer_settings()["bootstrap.servers"] == "a:1"


def test_unknown_or_bad_program_option_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.config"
    path.write_text("[labstream]\nn_treads = 3\n")
    with pytest.raises(ConfigError, match=r"bad\.config \[labstream\] n_treads: unknown option"):
        resolve(load_config(path), "watch", {})
    path.write_text("[labstream]\nnew_files_only = maybe\n")
    with pytest.raises(ConfigError, match=r"\[labstream\] new_files_only = maybe: expected true or false"):
        resolve(load_config(path), "watch", {})


def test_state_folder_inside_the_watched_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="inside the watched folder"):
        check_state_dir(tmp_path / "watched" / ".state", tmp_path / "watched")


def test_filters() -> None:
    filters = Filters(include=("*.csv", "raw/*"), exclude=("*.tmp",))
    assert filters.accepts("a/b/run.csv") and filters.accepts("raw/x.bin")
    assert not filters.accepts("notes.txt") and not filters.accepts("raw/x.tmp")
    assert not Filters().accepts("~$report.docx") and Filters().accepts("report.docx")
