"""librdkafka keys nobody knows (`linger.mss`) are named with their closest match, by
`config show` (warning, exit 1) and by every command (its error)."""

from __future__ import annotations

import time
from pathlib import Path

from click.testing import CliRunner

from labstream.cli import cli
from labstream.config import load_config
from labstream.kafka.properties import PROPERTIES
from labstream.kafka.settings import _librdkafka_knows, unknown_keys

TYPOS = (
    "[cluster]\nbootstrap.servers = 127.0.0.1:1\n[labstream]\ntopic_nmae = x\n"
    "[producer]\nlinger.mss = 5\nacks = all\n[consumer]\nsession.timout.ms = 3\nkey.deserializer = x\n"
)


def test_every_listed_name_is_a_property_of_the_installed_librdkafka() -> None:
    assert {"linger.ms", "acks", "group.id", "sasl.password", "session.timeout.ms"} <= PROPERTIES
    assert [name for name in sorted(PROPERTIES) if not _librdkafka_knows(name, "1")] == []
    assert not _librdkafka_knows("linger.mss", "5")


def test_unknown_client_keys_are_named_with_where_and_the_closest_name(tmp_path: Path) -> None:
    path = tmp_path / "typo.config"
    path.write_text(TYPOS)
    started = time.monotonic()
    lines = unknown_keys(load_config(path))
    assert time.monotonic() - started < 2.0
    assert lines == [
        f"{path} [producer] linger.mss: not a librdkafka setting (did you mean linger.ms?)",
        f"{path} [consumer] session.timout.ms: not a librdkafka setting (did you mean session.timeout.ms?)",
    ]  # acks and the Java client's key.deserializer are fine


def test_config_show_warns_about_every_unknown_key_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "typo.config"
    path.write_text(TYPOS)
    result = CliRunner().invoke(cli, ["config", "show", str(path)])
    assert result.exit_code == 1
    assert "linger.mss = 5" in result.stdout  # still shown
    assert "warning: " in result.stderr
    assert "linger.mss: not a librdkafka setting (did you mean linger.ms?)" in result.stderr
    assert "topic_nmae: unknown option (did you mean topic_name?)" in result.stderr
    assert "session.timout.ms" in result.stderr


def test_config_show_of_a_good_config_says_nothing_more() -> None:
    result = CliRunner().invoke(cli, ["config", "show", "local"])
    assert result.exit_code == 0 and result.stderr == ""


def test_a_command_names_every_unknown_librdkafka_key_with_its_closest_name(tmp_path: Path) -> None:
    path = tmp_path / "typo.config"
    path.write_text(TYPOS.replace("[labstream]\ntopic_nmae = x\n", ""))
    result = CliRunner().invoke(cli, ["download", str(tmp_path / "out"), "-t", "t", "-c", str(path)])
    assert result.exit_code == 1
    assert "linger.mss: not a librdkafka setting (did you mean linger.ms?)" in result.output
    assert "session.timout.ms: not a librdkafka setting (did you mean session.timeout.ms?)" in result.output
