#!/usr/bin/env bash
# Static checks: ruff (lint and format) over src, tests and bench, and mypy --strict over src
# and tests (mypy's files are set in pyproject.toml). ./scripts/test.sh runs it before the
# whole suite.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${LIFEBOAT_SETUP_DONE:-0}" != 1 ]; then
  "$ROOT/scripts/setup.sh"
fi
cd "$ROOT"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
