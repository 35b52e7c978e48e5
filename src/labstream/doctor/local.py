"""This machine: the role's folder, Java/Maven for the local broker, a service manager."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

from labstream.doctor.check import Check

__all__ = ["MIN_FREE_BYTES", "check_account", "check_folder", "check_java", "check_service_manager"]

MIN_FREE_BYTES = 1 << 30


def check_folder(folder: Path, role: str) -> list[Check]:
    if role == "watch":
        if not folder.exists():
            return [Check.fail("folder", f"{folder} does not exist", "create it or correct the path")]
        if not folder.is_dir():
            return [Check.fail("folder", f"{folder} is not a folder", "correct the path")]
        try:
            next(os.scandir(folder), None)
        except OSError as exc:
            return [Check.fail("folder", f"{folder} cannot be read: {exc.strerror}", "grant read access")]
        return [Check.ok("folder", f"{folder} is readable")]
    existing = next((p for p in (folder, *folder.parents) if p.exists()), folder)
    if existing != folder and existing.exists() and not existing.is_dir():
        return [Check.fail("folder", f"{folder} cannot be created: {existing} is a file", "correct the path")]
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".labstream-doctor-"):
            pass
    except OSError as exc:
        if existing == folder:
            return [Check.fail("folder", f"{folder} is not writable: {exc.strerror}", "grant write access")]
        return [
            Check.fail(
                "folder",
                f"{folder} does not exist and cannot be created: {existing} is not writable: {exc.strerror}",
                f"create {folder}, or grant write access to {existing}",
            )
        ]
    if existing == folder:
        checks = [Check.ok("folder", f"{folder} is writable")]
    else:
        detail = f"{folder} does not exist yet; the {role} creates it ({existing} is writable)"
        checks = [Check.info("folder", detail)]
    free = shutil.disk_usage(existing).free
    detail = f"{free / (1 << 30):.1f} GiB free in {existing}"
    if free < MIN_FREE_BYTES:
        checks.append(Check.fail("free space", detail, "free space, or write to another folder"))
    else:
        checks.append(Check.ok("free space", detail))
    return checks


def check_account(role: str, is_root: bool) -> Check:
    """A watcher reads whatever the watched folder names: as root, anyone who can write into
    the folder can have any file of the machine streamed (a link, a hard link, a bind mount)."""
    if not is_root:
        return Check.ok("account", "not root")
    if role != "watch":
        return Check.info("account", f"root (the {role} writes its files as root)")
    return Check.warn(
        "account",
        "a watcher run as root can read every file of this machine, and anyone who can write into "
        "the instrument folder chooses what it reads",
        "run it under a dedicated account that can read the folder: labstream service install --run-as USER",
    )


def running_as_root() -> bool:
    """Root on POSIX; on Windows the question is the service account (`--run-as`)."""
    geteuid = getattr(os, "geteuid", None)
    return geteuid is not None and geteuid() == 0


def check_java(local_broker: bool) -> list[Check]:
    """Java runs the local broker, Maven fetches its jars once; needed only for a local broker."""
    needed = local_broker
    checks = []
    for tool, hint in (("java", "install a JDK 17+ or set JAVA_HOME"), ("mvn", "install Maven")):
        home = os.environ.get("JAVA_HOME") if tool == "java" else None
        found = str(Path(home) / "bin" / "java") if home else shutil.which(tool)
        if found and Path(found).exists():
            checks.append(Check.ok(tool, f"found at {found}"))
        elif needed:
            checks.append(Check.fail(tool, "not found; the local broker needs it", hint))
        else:
            checks.append(Check.info(tool, "not found (needed only for `labstream broker start`)", hint))
    return checks


def check_service_manager() -> Check:
    if sys.platform == "win32":
        present, what = importlib.util.find_spec("win32serviceutil") is not None, "pywin32"
        hint = "pip install pywin32"
    elif sys.platform == "darwin":
        present, what, hint = shutil.which("launchctl") is not None, "launchctl", "launchd is part of macOS"
    else:
        present, what = shutil.which("systemctl") is not None, "systemctl"
        hint = "run under systemd, or start labstream from your own supervisor"
    if present:
        return Check.ok("service manager", f"{what} available for `labstream service install`")
    return Check.info(
        "service manager", f"{what} not found (needed only for `labstream service install`)", hint
    )
