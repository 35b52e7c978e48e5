#!/usr/bin/env bash
# The test suite: unit tests, then integration tests against a real Apache Kafka broker
# that the session fixture starts on 127.0.0.1:29092 (or reuses: LABSTREAM_TEST_BOOTSTRAP).
# Most tests wait (settle times, broker round trips) rather than compute, so they run on
# LABSTREAM_TEST_WORKERS pytest-xdist workers (4 by default, also on 2 cores). `loadfile`
# keeps a module on one worker: module fixtures (own brokers on fixed ports, chromium, s3proxy)
# start once. (`loadgroup` would be finer, but with pytest 9.2 xdist 3.8's group suffix to
# the node id is lost and groups split.) A test marked `serial` runs alone (tests/turns.py).
# Arguments go to pytest: `-n 0` runs everything in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests  # with the browser the dashboard test drives
set +e
.venv/bin/python -m pytest -n "${LABSTREAM_TEST_WORKERS:-4}" --dist loadfile "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "test.sh: pytest collected no tests" >&2
fi
exit "$status"
