"""--help texts say the same thing the same way and name the options that exist."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from labstream.cli import cli


def help_of(*command: str) -> str:
    result = CliRunner().invoke(cli, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # unwrapped


@pytest.mark.parametrize("command", ["watch", "download", "upload", "process"])
def test_topic_option_reads_the_same_on_every_command_naming_the_config_key(command: str) -> None:
    (line,) = re.findall(r"-t, --topic TEXT (.*?\]\])", help_of(command))
    assert line == "Kafka topic. [topic_name in [labstream]]"


def test_get_names_its_output_option_not_a_dir_argument() -> None:
    text = help_of("get")
    assert "-o/--output" in text and "into DIR" not in text and "in DIR" not in text
