#!/usr/bin/env bash
# The main job in one command: set up what is missing, then run `lifeboat demo`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
cd "$root"
exec .venv/bin/lifeboat demo "$@"
