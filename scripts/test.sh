#!/usr/bin/env bash
# The test suite: unit tests, then integration tests against a real Apache Kafka broker
# that the session fixture starts on 127.0.0.1:29092 (or reuses: LABSTREAM_TEST_BOOTSTRAP).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests  # with the browser the dashboard test drives
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "test.sh: pytest collected no tests" >&2
fi
exit "$status"
