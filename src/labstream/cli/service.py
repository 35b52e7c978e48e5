"""`labstream service install|start|stop|restart|status|remove`: a role as an OS service."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from labstream.cli.globals import bootstrap_given
from labstream.config import load_config
from labstream.runners import role_settings
from labstream.service import ServiceSpec, manager_for_platform
from labstream.service.base import ROLES
from labstream.settings import program_values
from labstream.state import WatchState
from labstream.upload.ledger import UploadLedger, default_state_dir


def _spec_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "-c",
            "--config",
            "config_path",
            required=True,
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Config file; its [labstream] section names what the role needs: topic_name, "
            "and file_directory (watch), download_directory (download) or processor (process).",
        ),
        click.option(
            "--role",
            type=click.Choice(ROLES),
            default="watch",
            show_default=True,
            help="The long-running command the service runs.",
        ),
        click.option(
            "--name",
            default=None,
            help="Service name [default: the config file's stem; STEM-ROLE for download/process].",
        ),
        click.option("--user", is_flag=True, help="A per-user service (systemd --user)."),
        click.option(
            "--state",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="The watcher's state folder [default: derived from folder and topic].",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _spec(
    config_path: Path, role: str, name: str | None, user: bool, state: Path | None, run_as: str | None = None
) -> ServiceSpec:
    default = config_path.stem if role == "watch" else f"{config_path.stem}-{role}"
    return ServiceSpec(
        name or default,
        config_path.resolve(),
        user=user,
        state=state,
        role=role,
        bootstrap=bootstrap_given(),
        run_as=run_as,
    )


@click.group()
def service() -> None:
    """Install and control `labstream watch|download|process` as an OS service.

    systemd (Linux), launchd (macOS) or a Windows service. The service runs `labstream ROLE
    --config CONFIG`: what the role needs comes from the config's [labstream] section. The
    environment variables the config uses ($VAR, ${VAR}, ${VAR:-default} when set) are
    stored for the service where only its user can read them.
    """


@service.command()
@_spec_options
@click.option("--start", "start_now", is_flag=True, help="Start it right away.")
@click.option(
    "--run-as",
    "run_as",
    metavar="USER",
    default=None,
    help="The account the service runs under (systemd User=, launchd UserName, a Windows service "
    "account): a dedicated one that can read the instrument folder, not root.",
)
def install(
    config_path: Path,
    role: str,
    name: str | None,
    user: bool,
    state: Path | None,
    start_now: bool,
    run_as: str | None,
) -> None:
    """Install (and enable at boot) a ROLE service for CONFIG.

    Re-run it after moving or rebuilding the virtual environment: the service runs the
    interpreter it was installed with.
    """
    # refused now, not at the first start
    role_settings(role, load_config(config_path, bootstrap=bootstrap_given()), state)
    spec = _spec(config_path, role, name, user, state, run_as)
    manager = manager_for_platform()
    for path in manager.install(spec):
        click.echo(f"wrote {path}")
    click.echo(f"installed {spec.unit_name}: {spec.command_line()}")
    for hint in manager.hints(spec):
        click.echo(f"hint: {hint}")
    if not (spec.user or spec.run_as):
        click.echo(
            "hint: the service runs as the service manager's default account (root, LocalSystem), "
            "which can read every file; install it with --run-as USER, a dedicated account that can "
            "read the instrument folder"
        )
    if start_now:
        manager.start(spec)
        click.echo(f"started {spec.unit_name}")


def _simple(action: str, past: str) -> click.Command:
    @_spec_options
    def command(config_path: Path, role: str, name: str | None, user: bool, state: Path | None) -> None:
        spec = _spec(config_path, role, name, user, state)
        result = getattr(manager_for_platform(), action)(spec)
        for path in result or []:
            click.echo(f"removed {path}")
        click.echo(f"{past} {spec.unit_name}")

    command.__doc__ = f"{action.capitalize()} the service."
    return click.command(name=action)(command)


for _action, _past in (
    ("start", "started"),
    ("stop", "stopped"),
    ("restart", "restarted"),
    ("remove", "removed"),
):
    service.add_command(_simple(_action, _past))


@service.command()
@_spec_options
def status(config_path: Path, role: str, name: str | None, user: bool, state: Path | None) -> None:
    """Whether it runs, since when, whether its interpreter is still there, and a watcher's
    own progress (from its ledger)."""
    spec = _spec(config_path, role, name, user, state)
    manager = manager_for_platform()
    info = manager.status(spec)
    click.echo(f"{spec.unit_name}: {info.get('ActiveState', '?')} {info.get('SubState', '')}".rstrip())
    if info.get("ActiveEnterTimestamp"):
        click.echo(f"  since {info['ActiveEnterTimestamp']} (pid {info.get('MainPID', '?')})")
    python = manager.installed_python(spec)
    if python and not Path(python).exists():
        click.echo(
            f"  its interpreter {python} is gone (virtual environment moved or rebuilt?); repair: "
            f"run `labstream service install` again with the same options from the new environment"
        )
    if role != "watch":
        return
    program = program_values(load_config(config_path))
    folder, topic = program.get("file_directory"), program.get("topic_name")
    ledger_dir = state or (default_state_dir(Path(folder), topic) if folder and topic else None)
    if ledger_dir and WatchState(ledger_dir).ledger.exists():
        with UploadLedger(WatchState(ledger_dir).ledger) as ledger:
            click.echo(f"  watcher ledger {ledger_dir}: {ledger.counts()}")
