"""Guards for every test: no leaked threads; under pytest-xdist, `serial` tests run alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from .turns import turn

# Property tests assert what inputs do, not how fast: a loaded 2-core CI machine (xdist
# workers, a broker) must not fail one on Hypothesis's 200 ms per-example deadline.
settings.register_profile("labstream", deadline=None)
settings.load_profile("labstream")


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while True:
        leaked = [
            t
            for t in threading.enumerate()
            if t not in before and t.is_alive() and t.name.startswith("labstream")
        ]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/integration needs the broker: `-m "not integration"` skips them all."""
    integration = Path(__file__).parent / "integration"
    for item in items:
        if integration in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    """Under xdist, a `serial` test (fixtures included) waits for the running tests to end and
    holds the others back until it is done; every other test runs beside any but those."""
    if not hasattr(item.config, "workerinput"):
        return (yield)
    # xdist gives each worker basetemp=<the run's basetemp>/<worker id>: the parent is shared.
    folder = Path(item.config.option.basetemp).parent
    with turn(folder, exclusive=item.get_closest_marker("serial") is not None):
        return (yield)
