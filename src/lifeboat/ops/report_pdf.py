"""The compliance report as PDF: the HTML report printed by headless Chromium, so the PDF
is exactly what a browser shows (the print styles lay it out on A4). Chromium is not a
dependency of Lifeboat: without it, the user is told how to get it or to take the HTML."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from lifeboat.errors import LifeboatError
from lifeboat.util.fs import write_atomically

# the names Debian, other distributions and Google's package install it under
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
PRINT_TIMEOUT = 120.0  # seconds; a report of seven years prints in a few

MISSING = (
    "PDF output needs Chromium, which was not found on the PATH "
    "(chromium, chromium-browser or google-chrome): install it "
    "(Debian: apt-get install chromium) or use --format html"
)


class PdfError(LifeboatError):
    """Chromium is missing, failed or did not finish printing."""


def find_chromium() -> str:
    """The path of the first Chromium on the PATH; PdfError when there is none."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise PdfError(MISSING)


def headless_command(binary: str, profile: Path) -> list[str]:
    """Chromium without a window, in its own throwaway profile: nothing of a user's browser
    is read or changed. --no-sandbox: Chromium refuses to start its sandbox as root, and
    the page it loads is our own file, which allows no script and no network anyway."""
    return [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        f"--user-data-dir={profile}",
    ]


def write_pdf(html: str, output: Path, timeout: float = PRINT_TIMEOUT) -> None:
    """Print html to output as PDF (written whole or not at all). Raises PdfError."""
    find_chromium()  # its absence said first: it is the likelier problem
    if not output.parent.is_dir():  # said before Chromium spends seconds printing
        raise PdfError(f"cannot write {output}: the folder {output.parent} does not exist")
    data = pdf_of(html, timeout)
    try:
        write_atomically(output, data)
    except OSError as exc:
        raise PdfError(f"cannot write {output}: {exc.strerror or exc}") from None


def pdf_of(html: str, timeout: float = PRINT_TIMEOUT) -> bytes:
    """html printed to PDF by Chromium, from a temporary folder (the page and Chromium's
    profile) deleted afterwards. Raises PdfError."""
    binary = find_chromium()
    try:
        return _print(binary, html, timeout)
    except OSError as exc:  # the temporary folder: full or not writable
        raise PdfError(
            f"cannot print the PDF in a temporary folder: {exc.strerror or exc}"
        ) from None


def _print(binary: str, html: str, timeout: float) -> bytes:
    with tempfile.TemporaryDirectory(prefix="lifeboat-pdf-") as work:
        page = Path(work, "report.html")
        page.write_text(html, encoding="utf-8")
        printed = Path(work, "report.pdf")
        command = [
            *headless_command(binary, Path(work, "profile")),
            f"--print-to-pdf={printed}",
            "--no-pdf-header-footer",
            page.as_uri(),
        ]
        stderr = _run(command, timeout)
        if not printed.is_file() or printed.stat().st_size == 0:
            lines = [line.strip() for line in stderr.splitlines() if line.strip()]
            # the last line: Chromium logs harmless errors (D-Bus, GPU) before the real one
            said = lines[-1] if lines else "it printed nothing"
            raise PdfError(f"Chromium could not print the report to PDF: {said}")
        return printed.read_bytes()


def _run(command: list[str], timeout: float) -> str:
    """Run Chromium in its own process group and return its stderr. Its child processes
    share the pipe, so a normal end (end of stderr) means they are gone too; on a timeout
    the whole group is killed while its leader is not yet reaped (its id still names it)."""
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise PdfError(f"cannot start Chromium ({command[0]}): {exc.strerror or exc}") from None
    try:
        _out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        process.communicate()
        raise PdfError(f"Chromium did not finish printing the PDF within {timeout:g} s") from None
    return err.decode("utf-8", "replace")


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
