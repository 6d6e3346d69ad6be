#!/usr/bin/env python3
"""GCS upload paths side by side: Lifeboat's own resumable-upload client against the SDK's.

Run from the repository root with the project's virtualenv::

    .venv/bin/python bench/bench_gcs_upload.py              # a 1 GiB stream
    .venv/bin/python bench/bench_gcs_upload.py --size-mb 256

It starts gcp-storage-emulator on a loopback port and uploads, in a child process each, the
same stream of --size-mb of random bytes, produced by a generator 1 MiB at a time so that
the stream is never whole in memory, through:

* ``lifeboat``: ``GcsStorage.write`` (storage/gcs.py, chunks of part_size while the next
  one is gathered, a crc32c the service checks on the last chunk);
* ``sdk``: ``Blob(chunk_size=part_size).upload_from_file(checksum="crc32c")``, the SDK's
  resumable upload, fed by a file-like view of the same generator that keeps the chunk
  last read so that the SDK can seek back into it after a failed request (a stream from
  a generator cannot rewind further, and the SDK needs tell() and seek()).

For each it measures wall time and peak resident memory (GNU time, as bench_s3.py does),
and checks the stored object's size and crc32c. Then each uploads --fault-size-mb through a
loopback proxy (tests/servers/gcs.py) that answers 503 once, to the third chunk: whether
the upload survives one throttled chunk, with the SDK's own retries off (retry=None) as the
backend has them, so that max_attempts stays the one retry policy. The results go to
``bench/results/gcs-upload-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
MIB = 1024 * 1024
KEY = "bench/backups/20261206T000000Z/base.tar.zst.age"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def stream(size: int) -> Iterator[bytes]:
    """size random bytes, 1 MiB at a time, each chunk new memory as a pipeline stage makes it."""
    sent = 0
    while sent < size:
        n = min(MIB, size - sent)
        yield os.urandom(n)
        sent += n


class GeneratorFile:
    """A read-only file over a generator of chunks, for the SDK: tell(), and seek() back
    into the bytes last read (all a resumable upload's recovery needs) and no further."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._last = b""  # what read() returned last, for a seek back into it
        self._position = 0
        self._pending: list[memoryview] = []  # read from the generator, not yet returned

    def tell(self) -> int:
        return self._position

    def seek(self, position: int, whence: int = 0) -> int:
        back = self._position - position
        if whence != 0 or not 0 <= back <= len(self._last):
            raise OSError(f"cannot seek to {position} from {self._position}")
        if back:
            self._pending.insert(0, memoryview(self._last)[len(self._last) - back :])
            self._last = self._last[: len(self._last) - back]
            self._position = position
        return position

    def read(self, size: int = -1) -> bytes:
        wanted = size if size >= 0 else 1 << 62
        parts: list[memoryview] = []
        got = 0
        while got < wanted:
            if not self._pending:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._pending.append(memoryview(chunk))
            head = self._pending.pop(0)
            take, rest = head[: wanted - got], head[wanted - got :]
            if rest:
                self._pending.insert(0, rest)
            parts.append(take)
            got += len(take)
        self._last = b"".join(parts)
        self._position += len(self._last)
        return self._last


def child(mode: str, endpoint: str, bucket: str, size: int, part_size: int) -> None:
    """One upload, run in its own process so that its peak RSS is its own."""
    os.environ["STORAGE_EMULATOR_HOST"] = endpoint
    sys.path.insert(0, str(ROOT / "src"))
    from lifeboat.storage.gcs import GcsStorage
    from lifeboat.storage.options import StorageOptions

    storage = GcsStorage(f"gs://{bucket}/repo", StorageOptions(part_size=part_size))
    if mode == "lifeboat":
        storage.write(KEY, stream(size))
        return
    blob = storage._bucket().blob(f"repo/{KEY}", chunk_size=part_size)
    blob.upload_from_file(
        GeneratorFile(stream(size)),
        size=None,
        content_type="application/octet-stream",
        client=storage._client(),
        checksum="crc32c",
        retry=None,
        timeout=(10.0, 120.0),
    )


def third_chunk_once() -> Callable[[int, str, str], bool]:
    """Picks the third chunk request of a resumable upload, once."""
    chunks = 0

    def pick(number: int, method: str, path: str) -> bool:
        nonlocal chunks
        if method == "PUT" and "upload_id=" in path:
            chunks += 1
            return chunks == 3
        return False

    return pick


def measured(cmd: list[str]) -> dict[str, object]:
    """Wall seconds and peak RSS (MiB) of one command, from GNU time, and its last line of
    error output if it failed."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        started = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", report.name, *cmd], capture_output=True, text=True
        )
        wall = time.perf_counter() - started
        rss_kib = int(Path(report.name).read_text().split()[-1])
    figures: dict[str, object] = {
        "wall_s": round(wall, 2),
        "peak_rss_mib": round(rss_kib / 1024, 1),
    }
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    figures["ok"] = done.returncode == 0
    if done.returncode:
        figures["error"] = errors[-1] if errors else f"exit {done.returncode}"
    return figures


def stored(endpoint: str, bucket: str) -> dict[str, object]:
    import urllib.parse
    import urllib.request

    name = urllib.parse.quote(f"repo/{KEY}", safe="")
    with urllib.request.urlopen(f"{endpoint}/storage/v1/b/{bucket}/o/{name}", timeout=30) as r:
        resource: dict[str, object] = json.load(r)
    return {"size": int(str(resource["size"])), "crc32c": resource.get("crc32c")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--part-size-mb", type=int, default=16)
    parser.add_argument("--fault-size-mb", type=int, default=64)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, endpoint, bucket, size, part = args.child
        child(mode, endpoint, bucket, int(size), int(part))
        return

    sys.path.insert(0, str(ROOT))
    from tests.servers.gcs import FaultProxy, GcsEmulator, throttle

    size, part = args.size_mb * MIB, args.part_size_mb * MIB
    results: dict[str, object] = {"size_mib": args.size_mb, "part_size_mib": args.part_size_mb}
    with tempfile.TemporaryDirectory(prefix="bench-gcs-") as folder:
        emulator = GcsEmulator(Path(folder)).start()
        try:
            for mode in ("lifeboat", "sdk"):
                bucket = emulator.create_bucket()
                log(f"{mode}: uploading {args.size_mb} MiB")
                figures: dict[str, object] = dict(
                    measured(
                        [
                            sys.executable,
                            __file__,
                            "--child",
                            mode,
                            emulator.endpoint,
                            bucket,
                            str(size),
                            str(part),
                        ]
                    )
                )
                figures.update(stored(emulator.endpoint, bucket))
                log(f"{mode}: {figures}")
                results[mode] = figures
            for mode in ("lifeboat", "sdk"):
                bucket = emulator.create_bucket()
                log(f"{mode}: {args.fault_size_mb} MiB, the third chunk throttled once")
                with FaultProxy(emulator.endpoint, throttle(third_chunk_once())) as proxy:
                    command = [sys.executable, __file__, "--child", mode, proxy.endpoint]
                    command += [bucket, str(args.fault_size_mb * MIB), str(part)]
                    figures = measured(command)
                log(f"{mode}: {figures}")
                results[f"{mode}_one_chunk_throttled"] = figures
        finally:
            emulator.stop()
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"gcs-upload-{stamp}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    log(f"results in {out}")


if __name__ == "__main__":
    main()
