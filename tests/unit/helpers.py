"""What many unit tests build the same way: an age key in the test's folder, an initialised
repository, a configuration file, the command line run in-process and the one error line it
prints. The fixtures made of them are in tests/unit/conftest.py."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from lifeboat.cli.main import main
from lifeboat.pipeline.crypto import (
    AgeDecryptor,
    AgeEncryptor,
    generate_age_identity,
    write_identity,
)
from lifeboat.repo.catalog import Repository
from lifeboat.storage.base import Storage
from lifeboat.storage.local import LocalStorage


class AgeKey(NamedTuple):
    """An age identity file, as `lifeboat keygen` writes it, and its public key."""

    identity_file: Path
    public: str

    def encryptor(self) -> AgeEncryptor:
        return AgeEncryptor([self.public])

    def decryptor(self) -> AgeDecryptor:
        return AgeDecryptor(self.identity_file)


def new_age_key(folder: Path) -> AgeKey:
    """A new key whose identity file is folder/age.key, the file the configs name."""
    identity_file = folder / "age.key"
    return AgeKey(identity_file, write_identity(identity_file))


def initialised(name: str, storage: Storage) -> Repository:
    """The repository `name` on that storage, initialised as `lifeboat init` does."""
    repository = Repository(name, storage)
    repository.init()
    return repository


def local_repository(folder: Path, name: str) -> Repository:
    """The repository `name`, initialised in folder/name."""
    return initialised(name, LocalStorage(folder / name))


def run(args: list[str]) -> int:
    """`lifeboat args...` in this process; its exit code."""
    with pytest.raises(SystemExit) as caught:
        main(args)
    code = caught.value.code
    return 0 if code is None else int(code)


def one_error_line(err: str) -> str:
    """The one line a failing command writes to stderr, after checking it is the only one."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lifeboat: error: "), err
    assert "Traceback" not in err
    return lines[0]


def write_config(tmp_path: Path, repo: Path | None = None) -> Path:
    """tmp_path/lifeboat.toml: one local repository (tmp_path/repo unless given), age
    encryption to a new key, one PostgreSQL source wms, plain log lines."""
    _, public = generate_age_identity()
    repo = repo or tmp_path / "repo"
    config = tmp_path / "lifeboat.toml"
    config.write_text(
        f'[repositories.local]\nurl = "file://{repo}"\n'
        f'[encryption]\nage_recipients = ["{public}"]\n'
        f'age_identity_file = "{tmp_path / "age.key"}"\n'
        '[sources.wms]\ntype = "postgres"\ndsn = "postgresql://backup@db.internal:5432/wms"\n'
        '[logging]\nformat = "plain"\n',
        encoding="utf-8",
    )
    return config
