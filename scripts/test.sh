#!/usr/bin/env bash
# Run the whole test suite: the static checks (ruff, mypy --strict over code and tests), then
# every pytest test (unit, contract and integration, including slow tests).
# Extra arguments are passed to pytest and skip the static checks, e.g. ./scripts/test.sh -k restore -x
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
if [ "$#" -eq 0 ]; then
  LIFEBOAT_SETUP_DONE=1 ./scripts/check.sh
  # the whole suite has a time budget: show where it goes
  set -- --durations=25
fi
exec .venv/bin/python -m pytest "$@"
