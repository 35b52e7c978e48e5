"""Every error labstream raises on purpose.

::

    LabstreamError                  base; `retriable` says whether trying again may help
    +-- ConfigError                 bad or missing config file, section, key or value
    +-- WireError                   a chunk message that cannot be decoded or is inconsistent
    |   +-- UnsafePathError         a path that would escape the output folder
    |   +-- ChecksumError           a chunk whose bytes do not match its checksum
    |   |   +-- DecryptionError     an encrypted chunk that cannot be decrypted (no/wrong key)
    |   +-- GeometryError           chunks of one file that disagree on its layout, or too big
    +-- KafkaError                  anything the Kafka client reports
    |   +-- BrokerUnreachableError  no broker answered within the timeout (retriable)
    |   +-- DeliveryError           a chunk was not acknowledged by the cluster
    +-- SourceFileError             a file to send is missing, unreadable or changed while read
    +-- OutputError                 the download folder is full (no space, quota): wait, retry
    |   +-- OutputAccessError       the download folder cannot be written (permissions): stop
    |   +-- PlacementError          one file cannot take its name (a folder of that name, ...)
    +-- BrokerSetupError            the local broker cannot be fetched, formatted or started
    +-- AlreadyRunningError         another watcher/downloader holds this state folder's lock
    +-- LedgerError                 a ledger (SQLite) cannot be opened, read or written

The CLI turns a `LabstreamError` into one line on stderr and exit status 1;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "AlreadyRunningError",
    "BrokerSetupError",
    "BrokerUnreachableError",
    "ChecksumError",
    "ConfigError",
    "DecryptionError",
    "DeliveryError",
    "GeometryError",
    "KafkaError",
    "LabstreamError",
    "LedgerError",
    "OutputAccessError",
    "OutputError",
    "PlacementError",
    "SourceFileError",
    "UnsafePathError",
    "WireError",
]


class LabstreamError(Exception):
    """Base of every error labstream raises on purpose."""

    retriable = False


class ConfigError(LabstreamError):
    """A config file, section, key or value is missing or wrong."""


class WireError(LabstreamError):
    """A chunk message is malformed, truncated or inconsistent."""


class UnsafePathError(WireError):
    """A relative path that is absolute, climbs with '..' or names a drive."""


class ChecksumError(WireError):
    """A chunk's payload fails its checksum; `key` names the file version it belongs to."""

    def __init__(self, message: str, key: tuple[str, bytes, int], index: int) -> None:
        super().__init__(message)
        self.key = key
        self.index = index


class DecryptionError(ChecksumError):
    """An encrypted payload that cannot be decrypted: no key, a wrong key, or tampering."""


class GeometryError(WireError):
    """A chunk whose size, count or offset disagrees with its file's first chunk or the limits."""


class KafkaError(LabstreamError):
    """An error reported by the Kafka client library."""


class BrokerUnreachableError(KafkaError):
    """No broker answered within the timeout."""

    retriable = True


class DeliveryError(KafkaError):
    """At least one chunk was not acknowledged by the cluster."""


class SourceFileError(LabstreamError):
    """A file to send vanished, cannot be read, or changed while it was read."""


class OutputError(LabstreamError):
    """The output folder cannot be written for now (no space, quota): waiting may help."""

    retriable = True


class OutputAccessError(OutputError):
    """The output folder itself cannot be written (permission denied, read-only)."""

    retriable = False


class PlacementError(OutputError):
    """One file cannot be written under its name (a file or folder of that name, too long, ...).

    A per-file failure: the file is set aside and the stream goes on.
    """

    retriable = False


class BrokerSetupError(LabstreamError):
    """The local Kafka broker cannot be fetched, formatted or started."""


class AlreadyRunningError(LabstreamError):
    """Another instance (watcher, downloader, processor) holds the lock on this state folder."""


class LedgerError(LabstreamError):
    """A ledger (SQLite) cannot be opened, read or written (corrupt, not a database, locked).

    A full disk during a ledger write is an `OutputError` instead: waiting may help."""
