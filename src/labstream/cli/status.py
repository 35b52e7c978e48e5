"""`labstream status`: what the watcher sent, and what downstream verified."""

from __future__ import annotations

import datetime
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labstream.cli.common import human_bytes, trusted_keys_option
from labstream.cli.globals import load
from labstream.errors import ConfigError, KafkaError
from labstream.kafka import consumer_settings, ping
from labstream.logsafe import shown
from labstream.outcomes import ReceiptOutcome
from labstream.receipts import read_receipts
from labstream.receipts.keys import trusted_keys
from labstream.settings import program_values
from labstream.state import WatchState
from labstream.upload.cleanup import Cleaner, CleanupPolicy
from labstream.upload.ledger import (
    CLEANED,
    LiveProgress,
    UploadLedger,
    UploadState,
    default_state_dir,
    state_digest,
)

logger = logging.getLogger(__name__)
PIPE_WIDTH = 160
LOW_SPACE_BYTES = 1 << 20  # below this, SQLite soon fails to write the ledger
CATEGORIES = (
    "waiting",
    "sending",
    "live",
    "sent",
    "verified",
    "verified (unsigned)",
    "failed downstream",
    "failed",
    "skipped",
    "ignored",
    "cleaned up",
    "unauthenticated",
)


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("-t", "--topic", default=None, help="Topic the watcher streams DIRECTORY to.")
@click.option(
    "--state",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The watcher's state folder (instead of DIRECTORY and --topic).",
)
@click.option(
    "-c",
    "--config",
    "config_name",
    default=None,
    help="Config to read new receipts with [default: the watcher's].",
)
@click.option(
    "--refresh/--no-refresh",
    default=True,
    show_default=True,
    help="Read new receipts from Kafka before reporting.",
)
@trusted_keys_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--all", "show_all", is_flag=True, help="List every file, not only unfinished ones.")
def status(
    directory: Path | None,
    topic: str | None,
    state: Path | None,
    config_name: str | None,
    refresh: bool,
    receipts_trusted_keys: str | None,
    as_json: bool,
    show_all: bool,
) -> None:
    """Per file and in totals: waiting, sending, sent, verified downstream, failed.

    Only receipts signed by a trusted key count as verified or failed downstream and let
    clean-up act. A watcher that trusts no key (the default) shows files whose unsigned
    receipts all say verified as `verified (unsigned)`; otherwise unsigned receipts are shown
    as `unauthenticated`. Neither ever deletes or moves a file.
    """
    state = state or _derive_state(directory, topic)
    if not WatchState(state).ledger.exists():
        raise ConfigError(f"no watcher ledger in {state} (give --state, or DIRECTORY and --topic)")
    with UploadLedger(WatchState(state).ledger) as ledger:
        refreshed = _refresh(ledger, state, config_name, receipts_trusted_keys) if refresh else None
        signed_expected = bool(receipts_trusted_keys or ledger.meta("receipts_trusted_keys"))
        live = ledger.live_points()
        files = [_one_state(entry, signed_expected, live) for entry in ledger.report()]
        source = ledger.meta("source") or ""
        problems = local_problems(state, ledger.meta("root"))
    totals = {name: sum(1 for f in files if f["state"] == name) for name in CATEGORIES}
    if as_json:
        report = {"source": source, "totals": totals, "refreshed": refreshed, "problems": problems}
        click.echo(json.dumps({**report, "files": files}, indent=2))
        return
    if source:
        click.echo(f"source: {shown(source)}")
    for problem in problems:
        click.echo(f"problem: {problem}")
    _print(files, totals, show_all)


def local_problems(state: Path, root: str | None) -> list[str]:
    """What status sees for itself of the conditions a watcher reports (its heartbeat has them
    too): the watched folder gone, the state folder's disk full."""
    problems = []
    if root and not Path(root).is_dir():
        problems.append(f"watched folder {root} is gone (deleted, moved or its share unmounted)")
    free = shutil.disk_usage(state).free
    if free < LOW_SPACE_BYTES:
        problems.append(f"state folder {state} has {human_bytes(free)} free: its ledger cannot grow")
    return problems


def _one_state(entry: dict[str, Any], signed_expected: bool, live: dict[str, LiveProgress]) -> dict[str, Any]:
    """One `state` per file (what status shows); the watcher's own word kept as `ledger_status`;
    times as ISO 8601 UTC. A live file being sent (labstream.upload.live) is `live`, with the
    bytes acknowledged so far (`live_sent`) and the largest prefix a group verified
    (`live_verified`, by `live_verified_by`; unsigned receipts count only where no key is
    trusted, as for whole files)."""
    state = _category(entry, signed_expected)
    progress = live.get(entry["path"])
    if state in ("waiting", "sending") and progress is not None:
        state, entry["live_sent"] = "live", progress.sent
        entry["live_verified"], entry["live_verified_by"] = progress.verified, progress.verified_by
        entry["live_verified_unsigned"] = 0 if signed_expected else progress.unsigned
    entry["ledger_status"] = entry.pop("status")
    for key in ("updated_at", "verified_at", "retry_at"):
        entry[key] = _iso(entry[key])
    return {"path": entry.pop("path"), "state": state, **entry}


def _iso(when: float | None) -> str | None:
    if when is None:
        return None
    return datetime.datetime.fromtimestamp(when, datetime.timezone.utc).isoformat(timespec="seconds")


def _local(iso: str | None) -> str:
    """An ISO time as a person reads it here: local time; today's without the date."""
    if not iso:
        return "-"
    when = datetime.datetime.fromisoformat(iso).astimezone()
    today = datetime.datetime.now().astimezone().date()
    return when.strftime("%H:%M:%S" if when.date() == today else "%Y-%m-%d %H:%M")


def _derive_state(directory: Path | None, topic: str | None) -> Path:
    if directory is None or topic is None:
        raise ConfigError("give --state, or DIRECTORY and --topic")
    return default_state_dir(directory, topic)


def _refresh(ledger: UploadLedger, state: Path, config_name: str | None, given_keys: str | None) -> bool:
    """Read new receipts into the ledger; False (and one line on stderr) if Kafka did not answer."""
    receipts, config_path = ledger.meta("receipts_topic"), config_name or ledger.meta("config")
    if not receipts or not config_path:
        click.echo("not refreshed: no receipts topic or config recorded in the ledger", err=True)
        return False
    config = load(config_path)
    program_values(config)  # a typo in [labstream] is refused here as by every command
    trusted = trusted_keys(config, given_keys or ledger.meta("receipts_trusted_keys"))
    settings = consumer_settings(config, f"labstream-status-{state_digest(state)}")
    cleaner = Cleaner(
        Path(ledger.meta("root") or "."), ledger, CleanupPolicy(), source=ledger.meta("source") or ""
    )
    quiet = logging.getLogger("labstream")
    level = quiet.level
    if not quiet.isEnabledFor(logging.DEBUG):
        quiet.setLevel(logging.WARNING)  # partition and consumer chatter is no part of a report
    try:
        ping(settings, timeout=5.0)  # an absent broker would just look like "no new receipts"
        read_receipts(
            settings,
            receipts,
            cleaner.on_receipt,
            trusted,
            idle_seconds=2.0,
            timeout=30.0,
            on_live=cleaner.on_live,
        )
    except KafkaError as exc:
        click.echo(f"not refreshed: broker unreachable ({exc})", err=True)
        return False
    finally:
        quiet.setLevel(level)
    return True


def _category(entry: dict[str, Any], signed_expected: bool) -> str:
    """`signed_expected`: the watcher trusts receipt keys, so an unsigned receipt is suspect."""
    status = entry["status"]
    if entry["failed_downstream"]:  # any group's latest verdict on this version is a failure
        return "failed downstream"
    if (status == UploadState.SENT or status in CLEANED) and entry["verified_by"]:
        return "cleaned up" if status in CLEANED else "verified"
    if status == UploadState.SENT and entry["unauthenticated"]:
        outcomes = {receipt["outcome"] for receipt in entry["unauthenticated"]}
        if not signed_expected and outcomes == {ReceiptOutcome.VERIFIED}:
            return "verified (unsigned)"  # the default setup: no keys anywhere
        return "unauthenticated"  # receipts came, none signed by a trusted key
    return "waiting" if status == UploadState.QUEUED else str(status)


def _reason(entry: dict[str, Any]) -> str:
    """Why a file is where it is; for a failed one, also when it is tried again."""
    if "live_sent" in entry:
        return _live_reason(entry)
    reason = entry["reason"] or ""
    if entry.get("retry_at"):
        reason += f" (tried again when it changes, or at {_local(entry['retry_at'])})"
    return reason


def _live_reason(entry: dict[str, Any]) -> str:
    sent = f"{human_bytes(entry['live_sent'])} sent and acknowledged"
    if entry["live_verified"]:
        by = ", ".join(entry["live_verified_by"])
        return f"live, {human_bytes(entry['live_verified'])} verified so far (by {by}), {sent}"
    if entry["live_verified_unsigned"]:
        return f"live, {human_bytes(entry['live_verified_unsigned'])} verified so far (unsigned), {sent}"
    return f"live, {sent} so far"


def _unauthenticated(receipt: dict[str, str]) -> str:
    return (
        f"unauthenticated {receipt['outcome']} from {receipt['group']!r} (key {receipt['key_id'] or 'none'})"
    )


def _print(files: list[dict[str, Any]], totals: dict[str, int], show_all: bool) -> None:
    # Into a pipe or file: wide lines rather than paths folded at 80 columns.
    console = Console(width=None if sys.stdout.isatty() else PIPE_WIDTH)
    console.print("  ".join(f"{name}: {count}" for name, count in totals.items()))
    done = ("verified", "verified (unsigned)", "ignored", "cleaned up")
    listed = [f for f in files if show_all or f["state"] not in done]
    if not listed:
        return
    table = Table()
    table.add_column("file", overflow="fold")  # a path is shown whole
    table.add_column("state")
    for column in ("size", "changed", "verified"):
        table.add_column(column, no_wrap=True)  # a time cut in two reads as two times
    table.add_column("verified by")
    table.add_column("detail")
    for entry in listed:
        detail = "; ".join(
            [f"failed downstream by {g}: {r}" for g, r in entry["failed_downstream"].items()]
            + [_unauthenticated(u) for u in entry["unauthenticated"]]
        )
        table.add_row(  # names and reasons come from receipts: no markup, no terminal escapes
            escape(shown(entry["path"], 1000)),
            entry["state"],
            human_bytes(entry["size"]),
            _local(entry["updated_at"]),
            _local(entry["verified_at"]),
            escape(shown(", ".join(entry["verified_by"]) or "-")),
            escape(shown(detail or _reason(entry))),
        )
    console.print(table)
