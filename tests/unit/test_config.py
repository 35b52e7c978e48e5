from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from labstream.cli import cli
from labstream.config import load_config
from labstream.errors import ConfigError
from labstream.kafka import consumer_settings, producer_settings


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_sections_comments_and_env_substitution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_HOST", "broker.lab:9093")
    monkeypatch.setenv("KAFKA_SECRET", "s3cret")
    path = write(
        tmp_path / "lab.config",
        """
# a comment
[cluster]
bootstrap.servers = $KAFKA_HOST
sasl.password = ${KAFKA_SECRET}
; another comment
client.id = ${MISSING_WITH_DEFAULT:-lab-pc-1}

[producer]
linger.ms = 50

[consumer]
group.id = analysis
""",
    )
    config = load_config(path)
    assert config.producer_settings() == {
        "bootstrap.servers": "broker.lab:9093",
        "sasl.password": "s3cret",
        "client.id": "lab-pc-1",
        "linger.ms": "50",
    }
    assert config.consumer_settings()["group.id"] == "analysis"


def test_missing_env_var_names_file_section_and_key(tmp_path: Path) -> None:
    path = write(tmp_path / "c.config", "[cluster]\nsasl.password = $LABSTREAM_NOT_SET_ANYWHERE\n")
    with pytest.raises(ConfigError, match=r"c\.config \[cluster\] sasl\.password.*LABSTREAM_NOT_SET"):
        load_config(path)


def test_pointer_to_another_file_fills_in_cluster_and_producer(tmp_path: Path) -> None:
    write(tmp_path / "kafka.config", "[cluster]\nbootstrap.servers = a:1\n[producer]\nlinger.ms = 7\n")
    path = write(
        tmp_path / "service.config",
        "[openmsi_directory_stream_service]\nfile_directory = /data\n"
        "cluster_producer_config = kafka.config\ntopic_name = t\n[producer]\nlinger.ms = 9\n",
    )
    config = load_config(path)
    assert config.section("labstream")["topic_name"] == "t"
    assert config.producer_settings() == {"bootstrap.servers": "a:1", "linger.ms": "9"}
    assert config.where("bootstrap.servers").endswith("kafka.config [cluster] bootstrap.servers")


def test_pointer_to_builtin_name_and_broker_alias(tmp_path: Path) -> None:
    path = write(tmp_path / "x.config", "[labstream]\ncluster_producer_config = local\n")
    assert load_config(path).section("cluster")["bootstrap.servers"].startswith("127.0.0.1:")
    alias = write(tmp_path / "y.config", "[broker]\nbootstrap.servers = b:2\n")
    assert load_config(alias).section("cluster") == {"bootstrap.servers": "b:2"}


def test_unknown_librdkafka_key_names_file_section_and_key(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.config", "[cluster]\nbootstrap.servers = a:1\n[producer]\nlinger.mss = 5\n")
    with pytest.raises(ConfigError, match=r"bad\.config \[producer\] linger\.mss: not a librdkafka setting"):
        producer_settings(load_config(path))


def test_bad_value_names_file_section_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.config", "[cluster]\nbootstrap.servers = a:1\n[consumer]\nfetch.min.bytes = lots\n"
    )
    with pytest.raises(ConfigError, match=r"bad\.config \[consumer\] fetch\.min\.bytes: Invalid value"):
        consumer_settings(load_config(path), None)


def test_weaker_delivery_guarantee_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "weak.config", "[cluster]\nbootstrap.servers = a:1\n[producer]\nacks = 1\n")
    with pytest.raises(ConfigError, match=r"weak\.config \[producer\] acks = 1: labstream requires all"):
        producer_settings(load_config(path))


def test_openmsistream_java_serializer_keys_are_ignored(tmp_path: Path) -> None:
    path = write(
        tmp_path / "o.config",
        "[cluster]\nbootstrap.servers = a:1\n[producer]\n"
        "key.serializer = StringSerializer\nvalue.serializer = DataFileChunkSerializer\n",
    )
    settings = producer_settings(load_config(path))
    assert "key.serializer" not in settings and settings["acks"] == "all"


def test_unknown_section_and_missing_file_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[clusterr\]: unknown section"):
        load_config(write(tmp_path / "s.config", "[clusterr]\na = b\n"))
    with pytest.raises(ConfigError, match=r"not found.*built-in configs: local"):
        load_config(tmp_path / "nope.config")
    with pytest.raises(ConfigError, match="not valid INI"):
        load_config(write(tmp_path / "i.config", "bootstrap.servers = x\n"))


def test_a_broker_address_given_as_config_points_at_bootstrap(tmp_path: Path) -> None:
    for address in ("127.0.0.1:9092", "kafka-1.lab:9092,kafka-2.lab:9092", "[::1]:9092"):
        with pytest.raises(ConfigError, match=r"looks like a broker address; give it with -b/--bootstrap"):
            load_config(address)
    with pytest.raises(ConfigError, match=r"not found \(built-in configs"):  # a file name: as before
        load_config(tmp_path / "lab.config")


def test_group_new_means_a_fresh_group(tmp_path: Path) -> None:
    path = write(tmp_path / "g.config", "[cluster]\nbootstrap.servers = a:1\n[consumer]\ngroup.id = new\n")
    first = consumer_settings(load_config(path), None)["group.id"]
    second = consumer_settings(load_config(path), None)["group.id"]
    assert first != second and first.startswith("labstream-")


def test_config_show_masks_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_PW", "hunter2-very-secret")
    path = write(
        tmp_path / "s.config",
        "[cluster]\nbootstrap.servers = a:1\nsasl.password = $LAB_PW\nsasl.username = alice\n",
    )
    result = CliRunner().invoke(cli, ["config", "show", str(path)])
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    assert "sasl.password = ********" in result.output
    assert "sasl.username = alice" in result.output


def test_cli_reports_config_errors_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["config", "show", str(tmp_path / "missing.config")])
    assert result.exit_code == 1
    assert "Error: config file" in result.output and "Traceback" not in result.output


def test_missing_bootstrap_servers_says_so(tmp_path: Path) -> None:
    for text in ("[cluster]\n[producer]\nlinger.ms = 5\n", "[cluster]\nbootstrap.servers =\n"):
        path = write(tmp_path / "nobroker.config", text)
        with pytest.raises(ConfigError, match=r"nobroker\.config: no bootstrap\.servers in \[cluster\]"):
            producer_settings(load_config(path))
        with pytest.raises(ConfigError, match=r"no bootstrap\.servers"):
            consumer_settings(load_config(path), None)


def test_missing_bootstrap_servers_is_one_line_at_the_cli(tmp_path: Path) -> None:
    path = write(tmp_path / "nobroker.config", "[cluster]\nsecurity.protocol = PLAINTEXT\n")
    result = CliRunner().invoke(cli, ["download", str(tmp_path / "out"), "-c", str(path), "-t", "x"])
    assert result.exit_code == 1
    assert "no bootstrap.servers" in result.output and "?" not in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[cluster]\nbootstrap.servers = " + "a" * 10_000_000 + "\n", r"\[cluster\] bootstrap\.servers"),
        ("[cluster]\nbootstrap.servers = a:1\nclient.id = $HUGE\n", r"\[cluster\] client\.id"),
        ("[cluster]\nbootstrap.servers = a:1\n[labstream]\ntopic_name = " + "t" * 9000 + "\n", "topic_name"),
        ("[cluster]\nbootstrap.servers = a:1\n" + "k" * 5000 + " = 1\n", "key longer"),
    ],
)
def test_over_long_values_are_refused_before_librdkafka_sees_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, where: str
) -> None:
    monkeypatch.setenv("HUGE", "x" * 100_000)
    path = write(tmp_path / "long.config", text)
    with pytest.raises(ConfigError, match=where) as caught:
        load_config(path)
    assert len(str(caught.value)) < 500


def test_inline_pem_certificates_may_be_long(tmp_path: Path) -> None:
    pem = "-----BEGIN CERTIFICATE-----\\n" + "A" * 50_000 + "\\n-----END CERTIFICATE-----"
    path = write(tmp_path / "pem.config", f"[cluster]\nbootstrap.servers = a:1\nssl.ca.pem = {pem}\n")
    assert load_config(path).section("cluster")["ssl.ca.pem"] == pem
