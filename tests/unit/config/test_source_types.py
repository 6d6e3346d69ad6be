"""Every kind of source in lifeboat.toml: each type's own keys, and errors that name them."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeboat.config.load import load_config
from lifeboat.config.model import (
    FilesSourceConfig,
    PostgresSourceConfig,
    RedisSourceConfig,
    SqliteSourceConfig,
    archive_of,
)
from lifeboat.errors import ConfigError
from lifeboat.pipeline.crypto import generate_age_identity

_, AGE_PUBLIC = generate_age_identity()

HEAD = f"""\
[repositories.local]
url = "file:///var/backups/lifeboat"

[encryption]
age_recipients = ["{AGE_PUBLIC}"]
"""

EVERY_KIND = """
[sources.wms]
dsn = "postgresql://backup@db.internal:5432/wms"

[sources.cache]
type = "redis"
url = "redis://:secret@127.0.0.1:6379/0"

[sources.media]
type = "files"
paths = ["/srv/app/uploads", "/etc/app"]
exclude = ["*.tmp", "cache/"]

[sources.inventory]
type = "sqlite"
path = "/srv/inventory/inventory.db"
"""


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text))
    return caught.value.message


def test_each_type_is_read_into_its_own_model(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, EVERY_KIND))
    sources = config.sources
    # a source without `type` is a PostgreSQL one, as every source was before the others
    assert isinstance(sources["wms"], PostgresSourceConfig)
    assert isinstance(sources["cache"], RedisSourceConfig)
    assert sources["cache"].method == "replication"
    assert isinstance(sources["media"], FilesSourceConfig)
    assert sources["media"].paths == [Path("/srv/app/uploads"), Path("/etc/app")]
    assert sources["media"].exclude == ["*.tmp", "cache/"]
    assert isinstance(sources["inventory"], SqliteSourceConfig)
    assert sources["inventory"].method == "backup-api"
    # only PostgreSQL archives WAL: the others have the defaults, never a spool of their own
    assert archive_of(sources["cache"]).async_push is False


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lifeboat.toml"
    path.write_text(HEAD + text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ('type = "redis"\nurl = "redis://h"\ndsn = "x"', "sources.s.dsn: unknown key for a redis"),
        ('type = "files"\npaths = ["/a"]\nurl = "x"', "sources.s.url: unknown key for a files"),
        (
            'type = "sqlite"\npath = "/a.db"\npaths = []',
            "sources.s.paths: unknown key for a sqlite",
        ),
        ('dsn = "host=x"\npath = "/a.db"', "sources.s.path: unknown key"),
        ('type = "redis"', "sources.s.url: missing required key"),
        ('type = "files"\npaths = []', "sources.s.paths: at least one path is required"),
        ('type = "files"\npaths = ["uploads"]', "sources.s.paths: uploads: paths must be absolute"),
        ('type = "sqlite"\npath = "app.db"', "sources.s.path: app.db: path must be absolute"),
        (
            'type = "redis"\nurl = "redis://h"\nmethod = "bgsave"',
            'sources.s: method = "bgsave" needs rdb_path',
        ),
        ('type = "mongodb"', "sources.s.type: type must be one of postgres, redis, files, sqlite"),
    ],
)
def test_a_wrong_key_is_named_with_its_source_type(tmp_path: Path, table: str, named: str) -> None:
    message = _error(tmp_path, f"[sources.s]\n{table}\n")
    assert named in message
    assert "\n" not in message
