"""The heartbeat message: versioned JSON, built by the publisher, parsed strictly by readers.

Anyone with write access to the topic can put anything on it, so `parse_heartbeat` trusts
nothing: a size cap before parsing, no NaN/Infinity, a nesting limit, every field's type and
length checked, unknown fields ignored (newer senders), lists capped. What it returns is
safe to store and show; what it *claims* (host, counts) is still only a claim, which is what
`trust` says: unsigned, signed (by a trusted key), signed by a key this reader does not
trust, unchecked, or bad signature.

Version 1 beats from version 2 senders also carry `run` (random, one per process run) and
`seq` (1, 2, ... within the run) inside the signed body: a reader that already applied a
newer beat of the same signer can tell a replay. Beats without them (older senders) still
parse, with `run` "" and `seq` 0.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from labstream.errors import WireError

__all__ = [
    "DEFAULT_HEARTBEAT_TOPIC",
    "HEARTBEAT_VERSION",
    "MAX_HEARTBEAT_BYTES",
    "ROLES",
    "BeatState",
    "Heartbeat",
    "RecentFile",
    "SendOutcome",
    "Status",
    "Trust",
    "Verifier",
    "canonical",
    "parse_heartbeat",
]

HEARTBEAT_VERSION = 1
DEFAULT_HEARTBEAT_TOPIC = "labstream.heartbeats"
MAX_HEARTBEAT_BYTES = 256 * 1024
MAX_RECENT = 200  # files listed per beat; more are counted in `recent_dropped`
MAX_DEPTH = 6  # the format nests 3 deep; anything deeper is not a heartbeat
MAX_TEXT = 4096
ROLES = ("watch", "download", "process")
_MAX_INT = 2**63 - 1


class BeatState(str, enum.Enum):
    """A beat's "state": the process runs, or this is its last beat. The value is what the
    JSON and the dashboard's rows hold."""

    RUNNING = "running"
    STOPPED = "stopped"

    def __str__(self) -> str:
        return self.value


class SendOutcome(str, enum.Enum):
    """A watcher's recent file's "outcome": every chunk acknowledged, or not sent."""

    SENT = "sent"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


STATES = tuple(state.value for state in BeatState)
OUTCOMES = tuple(outcome.value for outcome in SendOutcome)


class Trust(str, enum.Enum):
    """How far a reader can believe who a heartbeat says it is from."""

    UNSIGNED = "unsigned"
    SIGNED = "signed"  # signature checked and good, by a trusted key
    UNTRUSTED_KEY = "untrusted-key"  # a good signature, by a key this reader does not trust
    UNCHECKED = "unchecked"  # carries a signature, but this reader has no key to check it
    BAD_SIGNATURE = "bad-signature"

    @property
    def proven(self) -> bool:
        """The signature is good, so the key it names really signed this beat."""
        return self in (Trust.SIGNED, Trust.UNTRUSTED_KEY)


# (signed payload, the message's "sig" object) -> a `Trust` (or True/False: signed/bad).
Verifier = Callable[[bytes, Mapping[str, Any]], Trust | bool]


@dataclass(frozen=True)
class RecentFile:
    """A file the process finished (sent or failed) since its previous beat."""

    path: str
    sha256: str
    size: int
    outcome: SendOutcome
    at: float
    reason: str = ""


@dataclass(frozen=True)
class Status:
    """What a process reports about itself; `snapshot()` callables return this."""

    folder: str = ""
    topic: str = ""
    group: str = ""
    queued_files: int = 0
    queued_bytes: int = 0
    in_flight: int = 0
    sent: int = 0
    verified: int = 0
    failed: int = 0
    bytes: int = 0
    last_file: str = ""
    last_file_at: float = 0.0
    last_error: str = ""
    recent: tuple[RecentFile, ...] = ()
    source: str = ""  # a watcher's instrument name, carried by its sends (wire v2)
    problems: str = ""  # local conditions that hold now ("; "-separated): state folder full, ...


@dataclass(frozen=True)
class Heartbeat:
    """One beat: who (role, host, pid, subject), when, and its `Status`."""

    instance: str
    role: str
    host: str
    pid: int
    version: str
    started: float
    at: float
    interval: float
    state: BeatState
    status: Status = field(default_factory=Status)
    rate: float = 0.0  # bytes per second since the previous beat
    recent_dropped: int = 0
    run: str = ""  # random per process run; "" from senders older than run/seq
    seq: int = 0  # 1, 2, ... within `run`
    trust: Trust = Trust.UNSIGNED
    key_id: str = ""  # the key that signed it, when `trust.proven`; never read from the body

    def body(self) -> dict[str, Any]:
        """The JSON object without signature (what a signer signs)."""
        data = asdict(self)
        data.pop("trust")
        data.pop("key_id")
        status = data.pop("status")
        status["recent"] = [asdict(r) for r in self.status.recent]
        return {"v": HEARTBEAT_VERSION, **data, **status}

    def to_bytes(self, sign: Callable[[bytes], dict[str, Any]] | None = None) -> bytes:
        body = self.body()
        if sign is not None:
            body["sig"] = sign(canonical(body))
        return json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")


def canonical(body: Mapping[str, Any]) -> bytes:
    """The exact bytes a signature covers: sorted keys, no spaces, no "sig"."""
    unsigned = {k: v for k, v in body.items() if k != "sig"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse_heartbeat(value: bytes, verify: Verifier | None = None) -> Heartbeat:
    """A checked `Heartbeat`, or `WireError` for anything else; never another exception."""
    if len(value) > MAX_HEARTBEAT_BYTES:
        raise WireError(f"heartbeat of {len(value)} bytes is over the {MAX_HEARTBEAT_BYTES} limit")
    try:
        body = json.loads(value, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." thousands deep
        raise WireError(f"heartbeat is not JSON: {exc}") from exc
    if _depth(body) > MAX_DEPTH:
        raise WireError("heartbeat nested too deep")
    if not isinstance(body, dict):
        raise WireError("heartbeat is not a JSON object")
    if body.get("v") != HEARTBEAT_VERSION:
        raise WireError(f"not a version {HEARTBEAT_VERSION} heartbeat")
    beat = _build(_Fields(body))
    trust = _trust(body, verify)
    key_id = str(body["sig"].get("key", ""))[:64] if trust.proven else ""
    return replace(beat, trust=trust, key_id=key_id)


class _Fields:
    """Typed, bounded access to one JSON object."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self._body = body

    def text(self, key: str, limit: int = MAX_TEXT, *, required: bool = False) -> str:
        value = self._body.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or len(value) > limit or (required and not value):
            raise WireError(f"heartbeat field {key!r} is not a string of at most {limit} characters")
        try:
            value.encode("utf-8")  # lone surrogates ("\\ud800") parse, but nothing can store them
        except UnicodeEncodeError as exc:
            raise WireError(f"heartbeat field {key!r} is not valid text") from exc
        return value

    def count(self, key: str) -> int:
        value = self._body.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_INT:
            raise WireError(f"heartbeat field {key!r} is not a count")
        return value

    def number(self, key: str, low: float = 0.0, high: float = 1e12) -> float:
        value = self._body.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise WireError(f"heartbeat field {key!r} is not a number")
        if not (math.isfinite(value) and low <= value <= high):
            raise WireError(f"heartbeat field {key!r} is out of range")
        return float(value)

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self._body.get(key)
        if value not in allowed:
            raise WireError(f"heartbeat field {key!r} is not one of {', '.join(allowed)}")
        return str(value)


def _build(f: _Fields) -> Heartbeat:
    status = Status(
        folder=f.text("folder"),
        topic=f.text("topic", 255),
        group=f.text("group", 255),
        queued_files=f.count("queued_files"),
        queued_bytes=f.count("queued_bytes"),
        in_flight=f.count("in_flight"),
        sent=f.count("sent"),
        verified=f.count("verified"),
        failed=f.count("failed"),
        bytes=f.count("bytes"),
        last_file=f.text("last_file"),
        last_file_at=f.number("last_file_at", high=1e11),
        last_error=f.text("last_error"),
        recent=_recent(f._body.get("recent", [])),
        source=f.text("source", 255),
        problems=f.text("problems"),
    )
    return Heartbeat(
        instance=f.text("instance", 1024, required=True),
        role=f.choice("role", ROLES),
        host=f.text("host", 255, required=True),
        pid=f.count("pid"),
        version=f.text("version", 64),
        started=f.number("started", high=1e11),
        at=f.number("at", high=1e11),
        interval=f.number("interval", low=0.1, high=86400.0),
        state=BeatState(f.choice("state", STATES)),
        status=status,
        rate=f.number("rate", high=1e15),
        recent_dropped=f.count("recent_dropped"),
        run=f.text("run", 64),
        seq=f.count("seq"),
    )


def _recent(items: object) -> tuple[RecentFile, ...]:
    if not isinstance(items, list) or len(items) > MAX_RECENT:
        raise WireError(f"heartbeat field 'recent' is not a list of at most {MAX_RECENT} files")
    recent = []
    for item in items:
        if not isinstance(item, dict):
            raise WireError("heartbeat 'recent' entry is not an object")
        f = _Fields(item)
        sha = f.text("sha256", 128)
        if sha and (len(sha) not in (64, 128) or not all(c in "0123456789abcdef" for c in sha)):
            raise WireError("heartbeat 'recent' entry has a malformed sha256")
        recent.append(
            RecentFile(
                path=f.text("path", required=True),
                sha256=sha,
                size=f.count("size"),
                outcome=SendOutcome(f.choice("outcome", OUTCOMES)),
                at=f.number("at", high=1e11),
                reason=f.text("reason"),
            )
        )
    return tuple(recent)


def _trust(body: Mapping[str, Any], verify: Verifier | None) -> Trust:
    sig = body.get("sig")
    if sig is None:
        return Trust.UNSIGNED
    if not isinstance(sig, dict):
        return Trust.BAD_SIGNATURE
    if verify is None:
        return Trust.UNCHECKED
    try:
        verdict = verify(canonical(body), sig)
    except Exception:  # a verifier choking on hostile input means "not verified", nothing more
        return Trust.BAD_SIGNATURE
    if isinstance(verdict, Trust):
        return verdict
    return Trust.SIGNED if verdict else Trust.BAD_SIGNATURE


def _depth(value: object) -> int:
    """Deepest list/object nesting of parsed JSON, walked without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")
