"""--help texts say the same thing the same way and name the options that exist."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from labstream.cli import cli
from labstream.settings import help_of as settings_help


def help_of(*command: str) -> str:
    result = CliRunner().invoke(cli, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # unwrapped


@pytest.mark.parametrize("command", ["watch", "download", "upload", "process"])
def test_topic_option_reads_the_same_on_every_command_naming_the_config_key(command: str) -> None:
    (line,) = re.findall(r"-t, --topic TEXT (.*?\]\])", help_of(command))
    assert line == "Kafka topic. [topic_name in [labstream]]"  # no default: none shown


def test_get_names_its_output_option_not_a_dir_argument() -> None:
    text = help_of("get")
    assert "-o/--output" in text and "into DIR" not in text and "in DIR" not in text


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # the CLI loads its commands when asked for
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


@pytest.mark.parametrize("command", _commands(cli), ids=lambda c: " ".join(c) or "labstream")
def test_every_commands_help_has_examples_of_itself(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    examples = result.output.split("Examples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    prefix = " ".join(("labstream", *command))
    assert examples and all(line.strip().startswith(prefix) for line in examples)


def test_a_settings_default_is_shown_in_the_one_notation_with_its_config_key() -> None:
    assert (
        settings_help("n_threads")
        == "Files read and produced in parallel. [default: 2; n_threads in [labstream]]"
    )


@pytest.mark.parametrize("command", _commands(cli), ids=lambda c: " ".join(c) or "labstream")
def test_every_default_in_every_help_reads_default_colon(command: tuple[str, ...]) -> None:
    text = help_of(*command)
    assert "(default" not in text and "[default]" not in text and "(or --topic)" not in text
    bare = re.findall(r"\[(\d[^]:;]*)[;\]]", text)  # e.g. "[2; n_threads ...]" without "default:"
    assert bare == []
