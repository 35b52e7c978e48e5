"""One settings table: every command refuses the same typo, help shows the table's defaults."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
from click.testing import CliRunner

from labstream.cli import cli
from labstream.config import load_config
from labstream.download.limits import Limits
from labstream.download.options import DownloadOptions
from labstream.errors import ConfigError
from labstream.process.options import ProcessOptions
from labstream.settings import (
    FILE_KEYS,
    KEYS,
    Telemetry,
    download_settings,
    help_of,
    process_settings,
    upload_settings,
    watch_settings,
)
from labstream.upload.streamer import StreamOptions


@pytest.fixture
def typo_config(tmp_path: Path) -> Path:
    path = tmp_path / "lab.config"
    path.write_text("[cluster]\nbootstrap.servers = 127.0.0.1:1\n[labstream]\nchunk_sise = 4096\n")
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["upload", "{dir}", "-t", "t"],
        ["watch", "{dir}", "-t", "t"],
        ["download", "{dir}/out", "-t", "t"],
        ["process", "metadata", "-t", "t"],
    ],
)
def test_every_command_refuses_an_unknown_labstream_key_with_the_same_error(
    typo_config: Path, tmp_path: Path, args: list[str]
) -> None:
    argv = [a.replace("{dir}", str(tmp_path)) for a in args] + ["-c", str(typo_config)]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 1, result.output
    assert f"{typo_config} [labstream] chunk_sise: unknown option (did you mean chunk_size?)" in result.output


def test_every_key_of_any_role_is_accepted_by_every_role(tmp_path: Path) -> None:
    path = tmp_path / "both.config"
    path.write_text(
        "[cluster]\nbootstrap.servers = 127.0.0.1:1\n[labstream]\n"
        f"file_directory = {tmp_path}\ntopic_name = t\nstate = {tmp_path.parent / 'state-x'}\n"
        "max_file_size = 1GiB\nreceipts_topic = r\nchunk_size = 8192\n"
    )
    config = load_config(path)
    watch = watch_settings(config, {})
    down = download_settings(config, {"out_dir": tmp_path / "o", "topic": "t"})
    up = upload_settings(config, {"topic": "t"})
    assert watch.stream.chunk_size == 8192 and watch.receipts_topic == "r"
    assert down.options.limits.max_file_size == 1 << 30 and down.receipts_topic == "r"
    assert up.auto_chunk_size and not watch.auto_chunk_size  # the watcher's key, not upload's
    assert up.receipts_topic == "r"


def test_command_line_beats_the_file_which_beats_the_table(tmp_path: Path) -> None:
    path = tmp_path / "c.config"
    path.write_text("[cluster]\nbootstrap.servers = a:1\n[labstream]\nheartbeat_seconds = 3\n")
    config = load_config(path)
    assert download_settings(config, {"out_dir": tmp_path, "topic": "t"}).telemetry.heartbeat_seconds == 3
    given = {"out_dir": tmp_path, "topic": "t", "heartbeat_seconds": 0.0}
    assert download_settings(config, given).telemetry.heartbeat_seconds == 0
    path.write_text("[cluster]\nbootstrap.servers = a:1\n[labstream]\nheartbeat_seconds = often\n")
    with pytest.raises(ConfigError, match=r"\[labstream\] heartbeat_seconds = often: not a number"):
        download_settings(load_config(path), {"out_dir": tmp_path, "topic": "t"})


def test_help_texts_show_the_defaults_of_the_table() -> None:
    for command, option, name in (
        ("watch", "--queue-max-size", "queue_max_size"),
        ("upload", "--wait-timeout", "wait_timeout"),
        ("download", "--timeout", "timeout"),
        ("process", "--retries", "retries"),
    ):
        result = CliRunner().invoke(cli, [command, "--help"], terminal_width=400)
        line = next(line for line in result.output.splitlines() if option in line)
        assert f"[default: {KEYS[name].default:g}" in " ".join(line.split()), line
    assert "queue_max_size in [labstream]" in help_of("queue_max_size")
    assert "[default: auto: the largest power of two" in help_of("chunk_size")
    assert "receipts_signing_key" in FILE_KEYS and "timeout" not in FILE_KEYS


@pytest.mark.parametrize("command", ["watch", "upload", "download", "process"])
def test_threads_is_spelled_the_same_on_every_command(command: str) -> None:
    text = " ".join(CliRunner().invoke(cli, [command, "--help"], terminal_width=400).output.split())
    assert "-n, --threads, --n-threads INTEGER" in text


def test_upload_takes_its_topic_from_the_file_like_every_role(tmp_path: Path) -> None:
    path = tmp_path / "lab.config"
    path.write_text("[labstream]\ntopic_name = xrd\n[cluster]\nbootstrap.servers = a:1\n")
    assert upload_settings(load_config(path), {}).topic == "xrd"
    assert upload_settings(load_config(path), {"topic": "other"}).topic == "other"


def test_a_processor_given_as_a_file_gets_a_group_named_by_its_stem() -> None:
    from labstream.settings import process_group

    assert process_group("/tmp/tmp.jb2vQ1/slow.py:process") == "labstream-process-slow"
    assert process_group(r"C:\lab\slow.py:Proc") == "labstream-process-slow"
    assert process_group("metadata") == "labstream-process-metadata"  # names as before
    assert process_group("mymod.sub:Proc") == "labstream-process-mymod.sub-Proc"


def test_heartbeat_signing_key_is_a_watch_setting(tmp_path: Path) -> None:
    from labstream.receipts.signing import write_keypair

    write_keypair(tmp_path / "instrument")
    (tmp_path / "data").mkdir()
    config = tmp_path / "lab.config"
    config.write_text(
        "[cluster]\nbootstrap.servers = x:9092\n[labstream]\ntopic_name = t\n"
        f"state = {tmp_path.parent / 'state-hb'}\nheartbeat_signing_key = {tmp_path / 'instrument'}\n"
    )
    settings = watch_settings(load_config(config), {"file_directory": str(tmp_path / "data")})
    assert settings.telemetry.signing_key is not None


@pytest.mark.parametrize("section_type", [DownloadOptions, ProcessOptions, Telemetry, StreamOptions, Limits])
def test_a_setting_named_in_a_section_object_has_the_same_default_in_the_table(section_type: type) -> None:
    """The section object is the one home of the default: the table shows and applies it."""
    defaults = section_type()
    named = [f.name for f in fields(section_type) if f.name in KEYS and KEYS[f.name].default is not None]
    for name in named:
        value = getattr(defaults, name)
        assert KEYS[name].default == getattr(value, "name", value), name  # a wire format by its name
    if section_type in (DownloadOptions, ProcessOptions, Telemetry):
        assert named  # the test checks something for these


def test_a_processor_setting_reaches_its_section_object_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "lab.config"
    path.write_text(
        "[cluster]\nbootstrap.servers = 127.0.0.1:1\n"
        "[labstream]\nprocessor_retry_seconds = 0.25\nstop_grace_seconds = 3\n"
    )
    settings = process_settings(load_config(str(path)), {"processor": "metadata", "topic": "t"})
    assert settings.options.processor_retry_seconds == 0.25
    assert settings.options.download.consumer_threads == 1  # the table's default, from the object
    down = download_settings(load_config(str(path)), {"out_dir": tmp_path / "o", "topic": "t"})
    assert down.options.stop_grace_seconds == 3.0 and down.options.placement == "beside"


def test_every_unknown_labstream_key_is_reported_at_once_with_its_closest_match(tmp_path: Path) -> None:
    path = tmp_path / "typos.config"
    path.write_text(
        "[cluster]\nbootstrap.servers = 127.0.0.1:1\n[labstream]\ntopic_nmae = x\nn_thread = 3\nzzz = 1\n"
    )
    result = CliRunner().invoke(cli, ["download", str(tmp_path / "out"), "-c", str(path)])
    assert result.exit_code == 1, result.output
    assert "topic_nmae: unknown option (did you mean topic_name?)" in result.output
    assert "n_thread: unknown option (did you mean n_threads?)" in result.output
    assert "zzz: unknown option" in result.output and "zzz: unknown option (did" not in result.output
    assert len(result.output.strip().splitlines()) == 1  # one clear line, not a list of every key
