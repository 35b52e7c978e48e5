"""Watch a folder tree; report files once the instrument has finished writing them."""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from labstream.conditions import Conditions
from labstream.errors import LabstreamError
from labstream.fileaccess import Tree, entry_refusal, link_kind, name_refusal, walk
from labstream.logsafe import shown
from labstream.loops import BackgroundLoop
from labstream.watch.filters import Filters
from labstream.watch.openfiles import open_for_writing

__all__ = ["DirectoryWatcher", "OnSkipped", "ReadyFile"]

logger = logging.getLogger(__name__)
TICK_SECONDS = 0.25
RENAMES_KEPT = 4096  # recent renames remembered, to tell a rename from a deletion
# (relative path as found, reason): a file that is not sent, by design (a link, a special
# file) or for its name, reported once.
OnSkipped = Callable[[str, str], None]
FOLDER_GONE = "folder-gone"  # the condition's name (labstream.conditions)


@dataclass(frozen=True)
class ReadyFile:
    path: Path
    relpath: str
    size: int
    mtime_ns: int
    ctime_ns: int = 0  # when settled: a fixed permission or a rewrite with the mtime put back
    grown: bool = False  # a live file that grew (not settled yet): send what was appended


SETTLE_SECONDS = 2.0  # a file unchanged this long is finished (settle_seconds)
# A live file that gained this much is sent without waiting for its interval: a fast writer's
# archive stays within a fraction of the interval and each segment's buffers stay small
# (17 MiB/s, interval 2 s: lag p95 2.4 s with 34 MiB segments; bench/live.py --big).
LIVE_SEGMENT_BYTES = 8 << 20
RESCAN_SECONDS = 60.0  # the full rescan, the safety net for lost events (rescan_seconds)


class _Candidate:
    __slots__ = ("ctime_ns", "grown_at", "grown_size", "live", "mtime_ns", "size", "stable_since")

    def __init__(
        self, version: tuple[int, int, int], now: float, live: bool, before: _Candidate | None = None
    ) -> None:
        self.size, self.mtime_ns, self.ctime_ns = version
        self.stable_since = now
        self.live = live  # matches a --live glob: decided once, when first seen
        # Live files: the size last reported grown, and when (kept across changes).
        self.grown_size: int = before.grown_size if before is not None else 0
        self.grown_at: float = before.grown_at if before is not None else now

    @property
    def version(self) -> tuple[int, int, int]:
        return self.size, self.mtime_ns, self.ctime_ns


class _Handler(FileSystemEventHandler):
    def __init__(
        self,
        on_path: Callable[[str], None],
        on_folder: Callable[[str], None],
        on_renamed: Callable[[str, str], None],
    ) -> None:
        self._on_path = on_path
        self._on_folder = on_folder
        self._on_renamed = on_renamed

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("deleted", "opened", "closed_no_write"):
            return
        path = getattr(event, "dest_path", "") or event.src_path
        if event.event_type == "moved" and not event.is_directory:
            self._on_renamed(os.fsdecode(event.src_path), os.fsdecode(path))
        (self._on_folder if event.is_directory else self._on_path)(os.fsdecode(path))


class DirectoryWatcher:
    """Runs watchdog plus one thread that settles candidates and rescans the tree."""

    def __init__(
        self,
        root: Path,
        on_ready: Callable[[ReadyFile], None],
        *,
        is_known: Callable[[str, int, int, int], bool],
        filters: Filters | None = None,
        settle_seconds: float = SETTLE_SECONDS,
        rescan_seconds: float = RESCAN_SECONDS,
        polling: bool = False,
        follow_links: bool = False,
        on_skipped: OnSkipped | None = None,
        conditions: Conditions | None = None,
        live: tuple[str, ...] = (),
        live_seconds: float = 2.0,
        live_close_seconds: float = 60.0,
        live_segment_bytes: int = LIVE_SEGMENT_BYTES,
        on_grown: Callable[[ReadyFile], None] | None = None,
    ) -> None:
        """`polling`: stat the tree every second instead of OS events (SMB/NFS shares, where
        events are lost); the rescan stays the safety net either way. Links, special files
        and names that cannot travel are skipped (labstream.fileaccess): one warning and
        one `on_skipped` call each, until the path changes. `conditions`: where a watched
        folder that disappears (deleted, unmounted) is reported, and its return. Files
        matching a `live` glob are also reported to `on_grown` while they grow (every
        `live_seconds`, sooner once they gained `live_segment_bytes`), and count as settled
        only after `live_close_seconds` unchanged (a log appended every few seconds stays
        one send)."""
        self._live_close = live_close_seconds
        self._live = Filters(live, ()) if live else None
        self._live_seconds = live_seconds
        self._live_segment = live_segment_bytes
        self._on_grown = on_grown
        self.root = root.resolve()
        self.tree = Tree(self.root, follow_links)
        self._on_ready = on_ready
        self._is_known = is_known
        self._on_skipped = on_skipped
        self._filters = filters or Filters()
        self._settle = settle_seconds
        self._rescan = rescan_seconds
        self._lock = threading.Lock()
        self._touched: set[str] = set()
        self._candidates: dict[str, _Candidate] = {}
        self._skipped: dict[str, str] = {}  # path -> reason, reported once
        self._renamed: OrderedDict[str, str] = OrderedDict()  # old path -> new path
        self._conditions = conditions or Conditions(logger)
        self._was_mount = False
        self._next_scan = 0.0
        self._observer = PollingObserver(timeout=1.0) if polling else Observer()
        self._handler = _Handler(self._touch, self._touch_folder, self._note_rename)
        self._loop = _Ticker(self._tick)

    def __enter__(self) -> DirectoryWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if not self.root.is_dir():
            raise LabstreamError(f"{self.root}: not a folder (the watched folder must exist)")
        self._was_mount = os.path.ismount(self.root)
        self._observer.schedule(self._handler, str(self.root), recursive=True)
        self._observer.start()
        self._loop.start()

    def stop(self) -> None:
        if self._observer.is_alive():
            self._observer.stop()
            self._observer.join(timeout=10)
        self._loop.stop()

    def pending(self) -> int:
        """Files seen but not yet settled."""
        with self._lock:
            return len(self._candidates) + len(self._touched)

    def _touch(self, path: str) -> None:
        with self._lock:
            self._touched.add(path)

    def _touch_folder(self, path: str) -> None:
        # A folder moved in as a whole brings files that raised no events of their own.
        for found in walk(Path(path)):
            self._touch(str(found))

    def _note_rename(self, old: str, new: str) -> None:
        with self._lock:
            self._renamed[old] = new
            while len(self._renamed) > RENAMES_KEPT:
                self._renamed.popitem(last=False)

    def skipped(self, path: str) -> str | None:
        """Why `path` is skipped now (a link, a special file, its name), or None."""
        with self._lock:
            return self._skipped.get(path)

    def renamed_to(self, path: str) -> str | None:
        """Where a file renamed since it was seen went (a temporary name put in place)."""
        with self._lock:
            return self._renamed.get(path)

    def _tick(self) -> None:
        if not self._root_present():
            return  # nothing to scan, and its files are not "vanished"
        if time.monotonic() >= self._next_scan:
            self._scan()
            self._next_scan = time.monotonic() + self._rescan
        self._settle_candidates()

    def _root_present(self) -> bool:
        """Is the watched folder there? Reported while it is not; once back, watched anew."""
        problem = self._root_problem()
        if problem:
            self._conditions.report(
                FOLDER_GONE, f"watched folder {problem}; waiting for it folder={self.root}"
            )
            return False
        if self._conditions.holds(FOLDER_GONE):
            self._conditions.clear(FOLDER_GONE, f"watched folder is back; rescanning folder={self.root}")
            self._reattach()
            self._next_scan = 0.0
        return True

    def _root_problem(self) -> str:
        try:
            if not os.path.isdir(self.root):
                return "is gone (deleted, moved or its share unmounted)"
        except OSError as exc:  # isdir says False for most; a hung share may say more
            return f"cannot be looked at ({exc.strerror or exc})"
        if self._was_mount and not os.path.ismount(self.root):
            return "is no longer mounted (only the empty mount point is left)"
        return ""

    def _reattach(self) -> None:
        """OS events stopped with the folder: watch the one that is there now."""
        try:
            self._observer.unschedule_all()
            self._observer.schedule(self._handler, str(self.root), recursive=True)
        except OSError as exc:
            logger.warning("events not watched, rescans only folder=%s reason=%s", self.root, exc)

    def _scan(self) -> None:
        for path in walk(self.root):
            self._touch(str(path))

    def _settle_candidates(self) -> None:
        now = time.monotonic()
        with self._lock:
            touched, self._touched = self._touched, set()
        # Every candidate is looked at again each tick: a file growing on a share that
        # sends no events must not look settled, and one deleted meanwhile is dropped.
        for path in touched | set(self._candidates):
            self._observe(path, now)
        self._report_grown(now)
        settled = [p for p, c in self._candidates.items() if now - c.stable_since >= self._settle_of(c)]
        busy = open_for_writing([Path(p) for p in settled])
        for path in settled:
            candidate = self._candidates[path]
            if Path(path) in busy:
                candidate.stable_since = now  # still open for writing: wait another round
                continue
            del self._candidates[path]
            relpath = Path(path).relative_to(self.root).as_posix()
            self._on_ready(ReadyFile(Path(path), relpath, *candidate.version))

    def _settle_of(self, candidate: _Candidate) -> float:
        """How long `candidate` must stay unchanged to count as finished."""
        return max(self._settle, self._live_close) if candidate.live else self._settle

    def _report_grown(self, now: float) -> None:
        """Live files that grew since they were last reported: every live_seconds, or once
        they gained live_segment_bytes."""
        if self._on_grown is None:
            return
        for path, candidate in self._candidates.items():
            if not candidate.live or candidate.size <= candidate.grown_size:
                continue
            gained = candidate.size - candidate.grown_size
            if now - candidate.grown_at < self._live_seconds and gained < self._live_segment:
                continue
            relpath = Path(path).relative_to(self.root).as_posix()
            candidate.grown_size, candidate.grown_at = candidate.size, now
            self._on_grown(ReadyFile(Path(path), relpath, *candidate.version, grown=True))

    def _observe(self, path: str, now: float) -> None:
        try:
            relpath = Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return
        if not self._filters.accepts(relpath):
            return
        st = self._look(path, relpath)
        if st is None:
            return
        version = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        candidate = self._candidates.get(path)
        if candidate is None:
            if not self._is_known(relpath, *version):
                live = self._live is not None and self._live.accepts(relpath)
                self._candidates[path] = _Candidate(version, now, live)
        elif candidate.version != version:
            self._candidates[path] = _Candidate(version, now, candidate.live, candidate)

    def _look(self, path: str, relpath: str) -> os.stat_result | None:
        """The stat of a file that may be sent; None (and the file is no candidate) if it
        is gone, a folder, or skipped."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self._gone(path, relpath)
            return None
        except OSError as exc:
            logger.warning("cannot look at file file=%s reason=%s", shown(relpath), exc.strerror or exc)
            return None
        if stat.S_ISDIR(st.st_mode):
            return None
        # Links and new paths get the full look (a linked folder above, the name); a
        # candidate seen every tick only its own stat.
        full_look = link_kind(st) is not None or not stat.S_ISREG(st.st_mode) or path not in self._candidates
        if full_look and self._refused(path, relpath):
            return None
        if link_kind(st) is None:
            return st
        try:
            return os.stat(path)  # a link followed (--follow-links): its file's size and mtime
        except OSError:
            return None

    def _refused(self, path: str, relpath: str) -> bool:
        """Whether `path` is skipped (reported once): a link, a special file, its name."""
        why = entry_refusal(Path(path), self.tree)
        if why is not None:
            self._skip(path, relpath, why)
            return True
        why = name_refusal(relpath)
        if why is not None:
            self._skip(path, relpath, why, name=True)
            return True
        self._forget_skipped(path)
        return False

    def _skip(self, path: str, relpath: str, why: str, *, name: bool = False) -> None:
        """Once per path and reason: a line, and `on_skipped`. `name`: the file is one the lab
        wants, under a name that cannot travel (an error); else a link or a special file."""
        self._candidates.pop(path, None)
        with self._lock:
            if self._skipped.get(path) == why:
                return
            self._skipped[path] = why
        if name:
            logger.error("file not sent file=%s reason=%s", shown(relpath, 1000), why)
        else:
            logger.warning("skipped file=%s reason=%s", shown(relpath, 1000), why)
        if self._on_skipped is not None:
            self._on_skipped(relpath, why)

    def _forget_skipped(self, path: str) -> None:
        with self._lock:
            self._skipped.pop(path, None)

    def _gone(self, path: str, relpath: str) -> None:
        self._forget_skipped(path)
        if self._candidates.pop(path, None) is None:
            return
        renamed = self.renamed_to(path)
        if renamed is not None:  # a temporary name put in place (rsync, editors): normal
            logger.debug("file renamed before it was sent file=%s to=%s", shown(relpath), shown(renamed))
        else:
            logger.warning("file vanished before it could be sent file=%s", shown(relpath))


class _Ticker(BackgroundLoop):
    """The watcher's thread: settles candidates and rescans every TICK_SECONDS. A bug in one
    tick is logged and the next tick comes (restarting after one tick's pause)."""

    restart_seconds = TICK_SECONDS
    join_seconds = 10.0

    def __init__(self, tick: Callable[[], None]) -> None:
        super().__init__("labstream-watch")
        self._tick = tick

    def run(self) -> None:
        while not self.wait(TICK_SECONDS):
            self._tick()

    def on_error(self, exc: Exception) -> None:  # a bug must not silently end watching
        logger.error("watch loop error; continuing", exc_info=exc)
