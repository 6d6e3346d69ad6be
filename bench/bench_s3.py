#!/usr/bin/env python3
"""Object-storage benchmark: moving a 2 GB backup to and from S3, Lifeboat against `aws s3 cp`.

Run from the repository root with the project's virtualenv::

    .venv/bin/python bench/bench_s3.py              # a 2 GiB backup
    .venv/bin/python bench/bench_s3.py --size-mb 256

It starts moto's S3 server on a loopback port, makes a backup whose stored object is
--size-mb of incompressible data in a local repository (through Lifeboat's own pipeline:
random bytes, zstd, age, manifest), then measures, side by side, wall time and the peak
resident memory of:

* upload:   ``lifeboat copy --from local --to s3`` against ``aws s3 cp OBJECT s3://...``;
* download: ``lifeboat copy --from s3 --to local2`` against ``aws s3 cp s3://... FILE``.

Both move the same bytes through the same server; Lifeboat also checks them against the
manifest's sha256 while they stream, and verifies what the service stored. The results go
to ``bench/results/s3-<timestamp>.json``. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
MIB = 1024 * 1024
BUCKET = "bench"
SOURCE = "bench"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(port: int, log_file: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log_file.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    sys.exit(f"moto did not start on port {port}: see {log_file}")


def measured(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall seconds and peak RSS (MiB) of one command, from GNU time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        started = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", report.name, *cmd],
            capture_output=True,
            text=True,
            env=env,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed: {done.stderr.strip()[-2000:]}")
        peak_kib = int(report.read().strip().splitlines()[-1])
    return {"seconds": seconds, "peak_rss_mib": peak_kib / 1024}


def make_backup(config: Path, repo_dir: Path, size: int) -> tuple[str, Path]:
    """A committed backup of `size` incompressible bytes in the local repository, made by
    Lifeboat's own pipeline (zstd level 1, age)."""
    from datetime import UTC, datetime

    from lifeboat import __version__
    from lifeboat.context import Context
    from lifeboat.repo import layout
    from lifeboat.repo.manifest import Compression, Encryption, Manifest
    from lifeboat.repo.objects import write_plain

    class RandomBytes:
        def __init__(self, total: int) -> None:
            self.left = total

        def read(self, n: int = -1) -> bytes:
            n = self.left if n < 0 else min(n, self.left)
            self.left -= n
            return os.urandom(n)

    ctx = Context.load(config)
    repo = ctx.repository("local")
    encryptor = ctx.encryptor()
    started = datetime.now(UTC)
    backup = layout.backup_id(started)
    key = layout.object_key(SOURCE, backup, "dump.zst" + encryptor.suffix)
    written = write_plain(repo, key, RandomBytes(size), encryptor, ctx.config.compression, "bench")
    manifest = Manifest(
        id=backup,
        source=SOURCE,
        type="logical",
        started_at=started,
        finished_at=datetime.now(UTC),
        database="bench",
        server={"version": "bench", "version_num": 150000, "system_identifier": "0"},
        tool={"lifeboat": __version__, "pg_dump": "bench", "pg_dump_major": "15"},
        compression=Compression(level=ctx.config.compression.level),
        encryption=Encryption(
            method=encryptor.method,
            recipients=[{"type": r.type, "id": r.id} for r in encryptor.recipients()],
        ),
        objects=[written.stored],
    )
    repo.save_manifest(manifest)
    return backup, repo_dir / key


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=2048, help="stored size of the backup")
    ap.add_argument("--part-size-mb", type=int, default=None, help="the S3 repository's part size")
    ap.add_argument(
        "--upload-concurrency", type=int, default=None, help="the S3 repository's parts in flight"
    )
    ap.add_argument(
        "--aws-first", action="store_true", help="upload with the AWS CLI first (order effects)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args()
    aws = shutil.which("aws", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if aws is None:
        sys.exit("aws (the AWS CLI) not found: pip install awscli")

    work = Path(tempfile.mkdtemp(prefix="lifeboat-bench-s3-"))
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    log(f"work dir {work}, moto on {endpoint}, {args.size_mb} MiB backup")
    server = start_moto(port, work / "moto.log")
    try:
        from lifeboat.pipeline.crypto import generate_age_identity

        secret, public = generate_age_identity()
        (work / "age.key").write_text(secret + "\n")
        s3_url = f"s3://{BUCKET}/repo?region=us-east-1&endpoint={endpoint}"
        config = work / "lifeboat.toml"
        s3_options = "".join(
            f"{name} = {value}\n"
            for name, value in (
                ("part_size_mb", args.part_size_mb),
                ("upload_concurrency", args.upload_concurrency),
            )
            if value is not None
        )
        config.write_text(
            f'[repositories.local]\nurl = "{work / "local"}"\n\n'
            f'[repositories.s3]\nurl = "{s3_url}"\n{s3_options}\n'
            f'[repositories.back]\nurl = "{work / "back"}"\n\n'
            f'[encryption]\nage_recipients = ["{public}"]\n'
            f'age_identity_file = "{work / "age.key"}"\n'
        )
        lifeboat = [str(Path(sys.executable).with_name("lifeboat")), "--config", str(config)]
        aws_s3 = [aws, "--endpoint-url", endpoint, "s3"]
        subprocess.run([*aws_s3, "mb", f"s3://{BUCKET}"], check=True, env=env, capture_output=True)
        subprocess.run([*lifeboat, "init"], check=True, env=env, capture_output=True)

        log("making the backup")
        backup, stored = make_backup(config, work / "local", args.size_mb * MIB)
        size = stored.stat().st_size
        res: dict[str, Any] = {"bytes": size, "backup": backup}

        os.sync()
        uploads = [
            ("lifeboat_upload", [*lifeboat, "copy", "--from", "local", "--to", "s3"]),
            ("aws_upload", [*aws_s3, "cp", str(stored), f"s3://{BUCKET}/awscli/obj"]),
        ]
        for name, command in reversed(uploads) if args.aws_first else uploads:
            log(f"upload: {' '.join(command[:1] + command[3:5])}")
            res[name] = measured(command, env)
        os.sync()
        log("download: lifeboat copy --from s3 --to back")
        res["lifeboat_download"] = measured(
            [*lifeboat, "copy", "--from", "s3", "--to", "back"], env
        )
        log("download: aws s3 cp")
        res["aws_download"] = measured(
            [*aws_s3, "cp", f"s3://{BUCKET}/awscli/obj", str(work / "aws-download")], env
        )
        back = work / "back" / SOURCE / "backups" / backup / stored.name
        if back.read_bytes() != stored.read_bytes():
            sys.exit("the downloaded copy differs from the original")
    finally:
        server.kill()
        server.wait()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    for step in ("lifeboat_upload", "aws_upload", "lifeboat_download", "aws_download"):
        res[step]["mib_per_s"] = size / MIB / res[step]["seconds"]
    report = {
        "benchmark": "s3",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "size_mb": args.size_mb,
        "results": res,
    }
    print()
    print(f"{'step':<32} {'MiB/s':>8} {'seconds':>8} {'peak RSS MiB':>13} {'vs aws':>7}")
    for what in ("upload", "download"):
        ours, theirs = res[f"lifeboat_{what}"], res[f"aws_{what}"]
        for name, row in ((f"{what}: lifeboat copy", ours), (f"{what}: aws s3 cp", theirs)):
            ratio = row["mib_per_s"] / theirs["mib_per_s"]
            print(
                f"{name:<32} {row['mib_per_s']:>8.1f} {row['seconds']:>8.2f} "
                f"{row['peak_rss_mib']:>13.0f} {ratio:>6.2f}x"
            )
    print("vs aws: throughput / aws s3 cp's (above 1 = Lifeboat faster)")
    out = args.output or RESULTS_DIR / f"s3-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
