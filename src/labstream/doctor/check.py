"""A check's verdict and the settings of one doctor run."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROLES", "Check", "DoctorSettings", "Status"]

ROLES = ("watch", "download", "process")


class Status(enum.Enum):
    OK = "ok"
    FAIL = "fail"
    INFO = "info"  # reported, not judged: unknown, not applicable, optional
    WARN = "warn"  # works, but unsafe: said with its fix, does not fail the run


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    @classmethod
    def ok(cls, name: str, detail: str) -> Check:
        return cls(name, Status.OK, detail)

    @classmethod
    def fail(cls, name: str, detail: str, fix: str) -> Check:
        return cls(name, Status.FAIL, detail, fix)

    @classmethod
    def warn(cls, name: str, detail: str, fix: str) -> Check:
        return cls(name, Status.WARN, detail, fix)

    @classmethod
    def info(cls, name: str, detail: str, fix: str = "") -> Check:
        return cls(name, Status.INFO, detail, fix)


@dataclass(frozen=True)
class DoctorSettings:
    config_name: str
    topic: str | None = None
    role: str = "watch"
    folder: Path | None = None
    group: str | None = None  # the consumer group of download/process; else from the config
    chunk_size: int | None = None  # else [labstream] chunk_size, else the upload default
    timeout: float = 10.0  # seconds per network question
    bootstrap: str | None = None  # -b/--bootstrap: replaces the config's bootstrap.servers
