"""The back-off of files sent again after the cluster did not acknowledge them."""

from __future__ import annotations

from labstream.upload.retry import RetrySchedule


def test_backoff_doubles_up_to_the_longest_and_restarts_after_a_success() -> None:
    now = [0.0]
    schedule: RetrySchedule[str] = RetrySchedule(first=5.0, longest=30.0, clock=lambda: now[0])
    assert [schedule.add("a", "a") for _ in range(5)] == [5.0, 10.0, 20.0, 30.0, 30.0]
    schedule.succeeded("a")
    assert schedule.add("a", "a") == 5.0 and len(schedule) == 1


def test_items_are_due_only_after_their_delay_and_only_once() -> None:
    now = [100.0]
    schedule: RetrySchedule[str] = RetrySchedule(first=5.0, clock=lambda: now[0])
    schedule.add("a", "file a")
    now[0] = 102.0
    schedule.add("b", "file b")
    now[0] = 104.9
    assert schedule.due() == []
    now[0] = 105.0
    assert schedule.due() == ["file a"]
    assert schedule.due() == []
    now[0] = 107.0
    assert schedule.due() == ["file b"] and len(schedule) == 0
