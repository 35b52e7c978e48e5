"""One delivery tracker for both upload engines: counted from the first chunk, waited for."""

from __future__ import annotations

import threading

import pytest

from labstream.kafka.memory import MemoryBroker
from labstream.upload.inflight import InFlight


def test_a_send_counts_until_its_outcome_and_a_send_that_raises_stops_counting() -> None:
    tracker = InFlight()
    with tracker.sending():
        assert tracker.count == 1
    assert tracker.count == 1  # produced, not yet acknowledged
    tracker.done()
    assert tracker.count == 0
    with pytest.raises(OSError), tracker.sending():
        raise OSError("the file vanished")
    assert tracker.count == 0


def test_flush_returns_once_the_last_outcome_came() -> None:
    tracker = InFlight()
    producer = MemoryBroker().producer()
    with tracker.sending():
        pass
    timer = threading.Timer(0.3, tracker.done)
    timer.start()
    tracker.flush(producer, 0.05)
    assert tracker.count == 0
    timer.join()
