#!/usr/bin/env bash
# Install everything labstream needs into ./.venv (idempotent), plus Java and Maven for the
# local Kafka broker when they are missing and apt-get can install them.
set -euo pipefail
cd "$(dirname "$0")/.."

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
if ! command -v chromium >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing chromium with apt-get (dashboard browser test)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: chromium is needed for the dashboard browser test; please install it" >&2
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
