"""The RDB reader that gives a Redis backup its evidence: key and expire counts per database
read from the bytes as they pass, and the damage it must not count past. The RDBs are built
here record by record (rdb.h's encodings); the integration tests read real ones."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from lifeboat.sources.redis.rdb import (
    FactsTap,
    RdbFacts,
    RdbFormatError,
    file_facts,
    read_facts,
)
from lifeboat.sources.redis.server import RedisEndpoint, _command


def length(n: int) -> bytes:
    if n < 64:
        return bytes([n])
    if n < 16384:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    return b"\x80" + struct.pack(">I", n)


def string(data: bytes) -> bytes:
    return length(len(data)) + data


def lzf_string(compressed: bytes, plain_size: int) -> bytes:
    return b"\xc3" + length(len(compressed)) + length(plain_size) + compressed


def aux(name: str, value: str) -> bytes:
    return b"\xfa" + string(name.encode()) + string(value.encode())


def db(number: int, keys: int, expires: int, records: bytes) -> bytes:
    return b"\xfe" + length(number) + b"\xfb" + length(keys) + length(expires) + records


def key(name: bytes, value: bytes = b"\x00" + string(b"v"), expire_ms: int | None = None) -> bytes:
    expiry = b"" if expire_ms is None else b"\xfc" + struct.pack("<Q", expire_ms)
    return expiry + value[:1] + string(name) + value[1:]


def rdb(*dbs: bytes, version: int = 10) -> bytes:
    return b"REDIS%04d" % version + aux("redis-ver", "7.0.15") + b"".join(dbs) + b"\xff" + bytes(8)


def facts_of(data: bytes, chunk: int = 5) -> RdbFacts:
    stream = io.BytesIO(data)
    return read_facts(lambda: stream.read(chunk))


HASH = b"\x04" + length(2) + string(b"f1") + string(b"v1") + string(b"f2") + string(b"v2")
ZSET_2 = b"\x05" + length(1) + string(b"m") + struct.pack("<d", 1.5)
OLD_ZSET = b"\x03" + length(2) + string(b"a") + b"\x031.5" + string(b"b") + b"\xfd"  # +inf
QUICKLIST_2 = b"\x12" + length(2) + length(2) + string(b"packed") + length(1) + string(b"plain")
INT_STRING = b"\x00" + b"\xc1" + struct.pack("<h", 1234)
BIG_STRING = b"\x00" + string(b"x" * 70_000)  # a 32-bit length, stepped over across chunks
LZF = b"\x00" + lzf_string(b"\x01ab\xe0\x00\x01", 100)
MODULE = b"\x07" + length(12345) + length(2) + length(7) + length(5) + string(b"m") + length(0)
STREAM = (
    b"\x13"
    + length(1)
    + string(b"\x00" * 16)
    + string(b"listpack")
    + length(3)  # length
    + length(5)
    + length(0)  # last id
    + length(1)
    + length(0)  # first id
    + length(0)
    + length(0)  # max deleted id
    + length(3)  # entries added
    + length(1)  # one consumer group
    + string(b"workers")
    + length(5)
    + length(0)
    + length(3)  # entries read
    + length(1)  # one pending entry
    + b"\x00" * 16
    + b"\x00" * 8
    + length(1)
    + length(1)  # one consumer
    + string(b"alice")
    + b"\x00" * 8
    + length(1)
    + b"\x00" * 16
)


def test_counts_keys_and_expires_per_database_over_every_kind_of_value() -> None:
    data = rdb(
        db(0, 3, 1, key(b"s") + key(b"h", HASH) + key(b"z", ZSET_2, expire_ms=1 << 41)),
        db(
            3,
            7,
            2,
            key(b"old", OLD_ZSET)
            + key(b"q", QUICKLIST_2, expire_ms=1)
            + key(b"i", INT_STRING)
            + key(b"big", BIG_STRING)
            + key(b"lzf", LZF, expire_ms=5)
            + key(b"mod", MODULE)
            + key(b"stream", STREAM),
        ),
    )
    for chunk in (1, 7, 1 << 20):
        facts = facts_of(data, chunk)
        assert facts.keys == {"db0": 3, "db3": 7}
        assert facts.expires == {"db0": 1, "db3": 2}
        assert facts.redis_version == "7.0.15"
        assert facts.size == len(data)


def test_an_empty_server_has_no_databases() -> None:
    facts = facts_of(rdb())
    assert facts.keys == {}


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (rdb(db(0, 1, 0, key(b"a")))[:-12], "ends after"),
        (rdb(db(0, 1, 0, key(b"a"))) + b"\x00" * 40, "bytes follow the end of the RDB"),
        (rdb(db(0, 2, 0, key(b"a"))), "announces 2 keys"),
        (rdb(db(0, 1, 0, key(b"a", b"\x19" + string(b"x")))), "value type 25"),
        (b"NOTAN-RDB" + bytes(20), "not an RDB file"),
        (rdb(version=12), "RDB version 12 is newer"),
    ],
    ids=["cut", "trailing", "resize-disagrees", "unknown-type", "not-rdb", "too-new"],
)
def test_damage_is_an_error_not_a_count(data: bytes, said: str) -> None:
    with pytest.raises(RdbFormatError, match=said):
        facts_of(data)


def test_the_tap_passes_the_bytes_on_unchanged_and_reads_them_once() -> None:
    data = rdb(db(0, 2, 0, key(b"a") + key(b"b", BIG_STRING)))
    tap = FactsTap(io.BytesIO(data))
    passed = b"".join(iter(lambda: tap.read(4096), b""))
    assert passed == data
    assert tap.facts().keys == {"db0": 2}


def test_a_tap_whose_source_stops_short_says_so() -> None:
    data = rdb(db(0, 2, 0, key(b"a") + key(b"b", BIG_STRING)))
    tap = FactsTap(io.BytesIO(data[:1000]))
    tap.read(500)  # the reader of the stream failed before the end
    with pytest.raises(RdbFormatError, match="ends after"):
        tap.facts()


def test_a_file(tmp_path: Path) -> None:
    path = tmp_path / "dump.rdb"
    path.write_bytes(rdb(db(5, 1, 0, key(b"a"))))
    assert file_facts(str(path)).keys == {"db5": 1}


def test_replication_commands_are_resp_arrays() -> None:
    assert _command("AUTH", "p w") == b"*2\r\n$4\r\nAUTH\r\n$3\r\np w\r\n"


def test_the_url_names_the_server_and_a_password_file_wins(tmp_path: Path) -> None:
    from lifeboat.config.model import RedisSourceConfig

    config = RedisSourceConfig(type="redis", url="rediss://app:p%40ss@cache.example:6380/2")
    endpoint = RedisEndpoint.from_config(config)
    assert (endpoint.host, endpoint.port, endpoint.db, endpoint.tls) == (
        "cache.example",
        6380,
        2,
        True,
    )
    assert (endpoint.username, endpoint.password) == ("app", "p@ss")
    secret = tmp_path / "password"
    secret.write_text("from-file\n")
    config = RedisSourceConfig(type="redis", url="redis://:p@h", password_file=secret)
    assert RedisEndpoint.from_config(config).password == "from-file"
    assert RedisEndpoint.from_config(config).port == 6379
