#!/usr/bin/env bash
# Static checks of the code and of its tests: ruff (lint) and mypy --strict, both over src
# and tests (mypy's files are set in pyproject.toml). CI runs this before ./scripts/test.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
.venv/bin/ruff check src tests
.venv/bin/mypy
