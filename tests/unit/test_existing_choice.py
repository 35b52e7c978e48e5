"""A new ledger's rule for the files already in the folder (labstream.upload.streamer)."""

from __future__ import annotations

from labstream.upload.ledger import UploadState
from labstream.upload.streamer import StreamOptions, existing_choice


def test_an_empty_folder_needs_no_choice() -> None:
    assert existing_choice(0, StreamOptions()) == UploadState.QUEUED


def test_files_already_there_without_a_choice_are_a_question_not_a_silent_ignore() -> None:
    assert existing_choice(3, StreamOptions()) is None


def test_each_explicit_choice_is_kept() -> None:
    assert existing_choice(3, StreamOptions(upload_existing=True)) == UploadState.QUEUED
    assert existing_choice(3, StreamOptions(ignore_existing=True)) == UploadState.IGNORED
    # Both given: in doubt, send (downstream keeps one copy of identical content).
    both = StreamOptions(upload_existing=True, ignore_existing=True)
    assert existing_choice(3, both) == UploadState.QUEUED
