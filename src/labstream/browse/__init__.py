"""A topic's files, looked at and picked once, without a consumer group.

Input: a topic of chunk messages (docs/wire-format.md), read up to the end it had when the
read began (`labstream.kafka.read_topic`: partitions assigned, nothing committed).
Output: `list_topic` -> one `FileEntry` per send (chunks present/expected, state, times),
kept in a temporary SQLite file so memory stays flat however many chunks there are;
`fetch_files` -> the wanted files reassembled and verified by the downloader's `Assembler`
into a folder, with a verdict per wanted path.
"""

from __future__ import annotations

from labstream.browse.fetch import FetchState, fetch_files
from labstream.browse.index import FileEntry, FileIndex, list_topic
from labstream.times import parse_time

__all__ = ["FetchState", "FileEntry", "FileIndex", "fetch_files", "list_topic", "parse_time"]
