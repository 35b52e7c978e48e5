"""doctor's pure parts: ASCII fallback, server parsing, clock bound, the known key set."""

from __future__ import annotations

import json
from pathlib import Path

from labstream.config import load_config
from labstream.doctor import Check, Status, known_program_keys, render_json, render_text
from labstream.doctor.check import DoctorSettings
from labstream.doctor.clock import check_clock
from labstream.doctor.local import check_folder
from labstream.doctor.network import parse_servers
from labstream.doctor.runner import default_group
from labstream.doctor.sample import Sample
from labstream.settings import download_group, process_group

CHECKS = [Check.ok("a", "fine"), Check.fail("b", "broken\x1b[2J", "do x"), Check.info("c", "unknown")]


def test_text_uses_check_marks_where_possible_and_ascii_elsewhere() -> None:
    assert render_text(CHECKS, "utf-8").splitlines()[:2] == ["✓ a: fine", "✗ b: broken\\x1b[2J -> fix: do x"]
    ascii_text = render_text(CHECKS, "ascii")
    ascii_text.encode("ascii")
    assert ascii_text.splitlines() == [
        "[ok] a: fine",
        "[FAIL] b: broken\\x1b[2J -> fix: do x",
        "[--] c: unknown",
        "3 checks, 1 failed",
    ]


def test_json_is_ok_only_without_failures() -> None:
    assert json.loads(render_json(CHECKS))["ok"] is False
    report = json.loads(render_json([Check.ok("a", "x"), Check.info("c", "y")]))
    assert report["ok"] is True and report["checks"][1] == {
        "name": "c",
        "status": "info",
        "detail": "y",
        "fix": "",
    }


def test_bootstrap_servers_are_parsed_with_prefixes_and_ipv6() -> None:
    assert parse_servers("SASL_SSL://b1.lab:9093, b2.lab:9094,[::1]:9092,bare") == [
        ("b1.lab", 9093),
        ("b2.lab", 9094),
        ("::1", 9092),
        ("bare", 9092),
    ]


def test_clock_behind_a_newer_timestamp_fails_and_says_whose_clock() -> None:
    behind = Sample("t.receipts", 1, 10.0, newest_ms=200_000, newest_log_append=True, read_at_ms=100_000)
    check = check_clock([Sample("t", 1, 10.0, 50_000, False, 100_000), behind])
    assert (
        check.status is Status.FAIL and "at least 100.0 s" in check.detail and "LogAppendTime" in check.detail
    )
    assert check_clock([Sample("t", 1, 10.0, 99_000, False, 100_000)]).status is Status.OK
    assert check_clock([Sample("t", 0, None, None, False, 100_000)]).status is Status.INFO


def test_known_keys_cover_every_commands_keys() -> None:
    keys = known_program_keys()
    assert {
        "chunk_size",
        "max_file_size",
        "receipts_signing_key",
        "receipts_trusted_keys",
        "kafka_config",
    } <= keys
    assert "chunk_sise" not in keys


def lab_config(tmp_path: Path, program: str) -> Path:
    """A config whose [labstream] section downloads into tmp_path/out, plus `program` lines."""
    path = tmp_path / "lab.config"
    path.write_text(
        f"[labstream]\ndownload_directory = {tmp_path / 'out'}\n{program}[cluster]\nbootstrap.servers = a:1\n"
    )
    return path


def test_the_group_checked_is_the_one_the_role_would_join(tmp_path: Path) -> None:
    path = lab_config(tmp_path, "processor = metadata\n")
    config = load_config(path)
    named = download_group(config, None, tmp_path / "out")
    assert default_group(config, DoctorSettings(str(path), role="download")) == named
    other = DoctorSettings(str(path), role="download", folder=tmp_path / "other")
    assert default_group(config, other) == download_group(config, None, tmp_path / "other") != named
    assert default_group(config, DoctorSettings(str(path), role="process")) == process_group("metadata")
    path.write_text(path.read_text() + "[consumer]\ngroup.id = shared\n")
    assert default_group(load_config(path), DoctorSettings(str(path), role="download")) is None  # group.id


def test_the_default_group_is_found_even_with_an_unknown_key(tmp_path: Path) -> None:
    """An unknown [labstream] key is the "config keys" check's failure, not a reason to skip
    the cluster checks."""
    path = lab_config(tmp_path, "chunk_sise = 1\n")
    config = load_config(path)
    wanted = download_group(config, None, tmp_path / "out")
    assert default_group(config, DoctorSettings(str(path), role="download")) == wanted


def test_a_watcher_as_root_is_a_warning_with_the_fix() -> None:
    from labstream.doctor.local import check_account
    from labstream.doctor.render import render_text

    warned = check_account("watch", is_root=True)
    assert warned.status is Status.WARN and "--run-as" in warned.fix
    assert check_account("watch", is_root=False).status is Status.OK
    assert check_account("download", is_root=True).status is Status.INFO
    assert render_text([warned], "ascii").splitlines()[-1] == "1 checks (1 warning(s)), all passed"


def test_a_missing_output_folder_is_reported_missing_and_creatable(tmp_path: Path) -> None:
    checks = check_folder(tmp_path / "not" / "yet", "download")
    assert checks[0] == Check.info(
        "folder",
        f"{tmp_path / 'not' / 'yet'} does not exist yet; the download creates it ({tmp_path} is writable)",
    )
    assert checks[1].name == "free space"


def test_a_missing_folder_that_cannot_be_created_fails_naming_why(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (check,) = check_folder(tmp_path / "file" / "out", "process")
    assert check.status is Status.FAIL
    assert check.detail == f"{tmp_path / 'file' / 'out'} cannot be created: {tmp_path / 'file'} is a file"


def test_a_missing_watched_folder_is_said_to_not_exist(tmp_path: Path) -> None:
    (check,) = check_folder(tmp_path / "gone", "watch")
    assert check.status is Status.FAIL and check.detail == f"{tmp_path / 'gone'} does not exist"


def test_an_existing_writable_folder_is_ok(tmp_path: Path) -> None:
    assert check_folder(tmp_path, "download")[0] == Check.ok("folder", f"{tmp_path} is writable")
