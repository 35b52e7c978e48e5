#!/usr/bin/env bash
# Install everything labstream needs into ./.venv (idempotent), plus Java and Maven for the
# local Kafka broker when they are missing and apt-get can install them.
# `setup.sh --tests` (scripts/test.sh) also installs chromium for the dashboard's browser
# test; the demo and users do not need a web browser installed.
set -euo pipefail
cd "$(dirname "$0")/.."

for_tests=0
for arg in "$@"; do
  case "$arg" in
    --tests) for_tests=1 ;;
    *) echo "setup: unknown argument $arg (known: --tests)" >&2; exit 2 ;;
  esac
done

if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing Java 17 and Maven with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null
  else
    echo "setup: Java 17+ and Maven are needed for the local Kafka broker; please install them" >&2
    exit 1
  fi
fi

# The dashboard's browser test drives Debian's chromium (Playwright's own download is not used).
if [ "$for_tests" = 1 ] && ! command -v chromium >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing chromium with apt-get (dashboard browser test)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: chromium is needed for the dashboard browser test; please install it" >&2
    exit 1
  fi
fi

# The alert rules are checked with promtool and loaded by a real Prometheus in the tests
# (Debian's prometheus package brings both). The tests run their own server on a free port,
# so the packaged service is not wanted: it is stopped (and disabled under systemd).
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing prometheus with apt-get (alert rule tests)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    if [ -d /run/systemd/system ]; then
      systemctl disable --now prometheus >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/prometheus ]; then
      /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    fi
  else
    echo "setup: prometheus (server and promtool) is needed for the alert rule tests; please install it" >&2
    exit 1
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  # The venv's own pip installs the project from 21.3 on (PEP 660 editable installs); upgrading
  # it anyway cost 10-15 s of every fresh clone's setup.
  if ! .venv/bin/python -c 'import sys, pip; sys.exit(tuple(map(int, pip.__version__.split(".")[:2])) < (21, 3))'; then
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  fi
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi
