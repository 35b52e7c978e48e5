#!/usr/bin/env bash
# The whole job once, on a fresh machine: install, start a local Kafka broker, upload a
# sample folder, download it elsewhere, verify every file by SHA-256, say what happened.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/labstream demo "$@"
