#!/usr/bin/env bash
# Run the whole test suite (unit, contract and integration, including slow tests).
# Extra arguments are passed to pytest, e.g. ./scripts/test.sh -k restore -x
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
exec .venv/bin/python -m pytest "$@"
