"""The facts a Redis snapshot holds, read from its RDB bytes as they pass.

The evidence of a backup must describe the snapshot itself: INFO keyspace asked a moment
before or after differs under write load. The RDB says it exactly: each database starts
with SELECTDB and RESIZEDB (its key and expire counts when the snapshot began), then its
keys. RESIZEDB alone cannot be reached for the second database without stepping over
every value of the first, so this reader steps over every value, counts the keys it
actually meets per database, and checks that RESIZEDB agreed: a stream cut or damaged in
the middle fails here. redis-check-rdb reads the same file, but reports only totals (no
count per database) and needs the bytes in a file, while this reads them once, on their
way into the repository. The CRC64 at the end is left to redis-check-rdb (verify --deep,
drills): computed here, in Python, it would slow every backup down.

The format is Redis's rdb.h/rdb.c (RDB versions up to 11, Redis 7.2's); a value type this
reader does not know stops it with a clear error rather than a wrong count."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from lifeboat.errors import IntegrityError
from lifeboat.pipeline.checksum import Readable

MAGIC = b"REDIS"
MAX_VERSION = 11  # Redis 7.2's; 7.4's hash fields with TTLs are types this reader lacks
CHECKSUM_SIZE = 8

# opcodes (rdb.h)
_SLOT_INFO = 0xF4
_FUNCTION2 = 0xF5
_FUNCTION_PRE_GA = 0xF6
_MODULE_AUX = 0xF7
_IDLE = 0xF8
_FREQ = 0xF9
_AUX = 0xFA
_RESIZEDB = 0xFB
_EXPIRETIME_MS = 0xFC
_EXPIRETIME = 0xFD
_SELECTDB = 0xFE
_EOF = 0xFF

# value types (rdb.h): which are one string, a counted run of strings...
_ONE_STRING = {0, 9, 10, 11, 12, 13, 16, 17, 20}  # string, and the packed encodings
_STRINGS = {1: 1, 2: 1, 4: 2, 14: 1}  # list, set, hash (field+value), quicklist
_ZSET, _ZSET_2, _MODULE_2, _QUICKLIST_2 = 3, 5, 7, 18
_STREAMS = {15: 1, 19: 2, 21: 3}  # stream listpacks, and their 7.0 and 7.2 versions
_MODULE_EOF, _MODULE_SINT, _MODULE_UINT, _MODULE_FLOAT, _MODULE_DOUBLE, _MODULE_STRING = range(6)


class RdbFormatError(IntegrityError):
    """The bytes are not an RDB this reader understands (damaged, cut, or too new)."""


@dataclass
class RdbFacts:
    """What an RDB snapshot holds: per database (db0, db3...), its keys and those of them
    with a time to live; the server's version as the file's header records it."""

    rdb_version: int = 0
    redis_version: str = ""
    keys: dict[str, int] = field(default_factory=dict)
    expires: dict[str, int] = field(default_factory=dict)
    # RESIZEDB's counts, checked against the keys met
    announced: dict[str, tuple[int, int]] = field(default_factory=dict)
    size: int = 0  # bytes up to the end of the checksum


class _Bytes:
    """A pull reader over chunks handed in by next_chunk (b"" at the end)."""

    def __init__(self, next_chunk: Callable[[], bytes]) -> None:
        self._next = next_chunk
        self._buf = b""
        self._pos = 0
        self.consumed = 0  # bytes of the chunks before _buf

    @property
    def offset(self) -> int:
        return self.consumed + self._pos

    def _fill(self, n: int) -> None:
        parts = [self._buf[self._pos :]]
        have = len(parts[0])
        self.consumed += self._pos
        while have < n:
            chunk = self._next()
            if not chunk:
                self._buf, self._pos = b"".join(parts), 0
                raise RdbFormatError(
                    f"the RDB ends after {self.offset + have} bytes, in the middle of a record"
                )
            parts.append(chunk)
            have += len(chunk)
        self._buf, self._pos = b"".join(parts), 0

    def take(self, n: int) -> bytes:
        if self._pos + n > len(self._buf):
            self._fill(n)
        start = self._pos
        self._pos += n
        return self._buf[start : self._pos]

    def byte(self) -> int:
        if self._pos >= len(self._buf):
            self._fill(1)
        value = self._buf[self._pos]
        self._pos += 1
        return value

    def skip(self, n: int) -> None:
        left = len(self._buf) - self._pos
        if n <= left:
            self._pos += n
            return
        # a large value is stepped over chunk by chunk, never held whole
        n -= left
        self.consumed += len(self._buf)
        self._buf, self._pos = b"", 0
        while n > 0:
            chunk = self._next()
            if not chunk:
                raise RdbFormatError(f"the RDB ends after {self.consumed} bytes, inside a value")
            if len(chunk) > n:
                self._buf, self._pos = chunk, n
                return
            self.consumed += len(chunk)
            n -= len(chunk)

    def at_end(self) -> bool:
        if self._pos < len(self._buf):
            return False
        chunk = self._next()
        if not chunk:
            return True
        self.consumed += len(self._buf)
        self._buf, self._pos = chunk, 0
        return False


def read_facts(next_chunk: Callable[[], bytes]) -> RdbFacts:
    """Read a whole RDB from next_chunk's chunks; its facts. Raises RdbFormatError."""
    return _Reader(_Bytes(next_chunk)).read()


class _Reader:
    def __init__(self, data: _Bytes) -> None:
        self.data = data

    def length(self) -> tuple[int, bool]:
        """A length, or (for a string) the special encoding it announces."""
        first = self.data.byte()
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return ((first & 0x3F) << 8) | self.data.byte(), False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return int.from_bytes(self.data.take(4), "big"), False
        if first == 0x81:
            return int.from_bytes(self.data.take(8), "big"), False
        raise RdbFormatError(f"unknown length encoding 0x{first:02x} at byte {self.data.offset}")

    def count(self) -> int:
        value, special = self.length()
        if special:
            raise RdbFormatError(f"a count is string-encoded at byte {self.data.offset}")
        return value

    def skip_string(self) -> None:
        value, special = self.length()
        if not special:
            self.data.skip(value)
        elif value in (0, 1, 2):  # an integer of 1, 2 or 4 bytes
            self.data.skip(1 << value)
        elif value == 3:  # LZF: compressed length, then the plain length
            compressed = self.count()
            self.count()
            self.data.skip(compressed)
        else:
            raise RdbFormatError(f"unknown string encoding {value} at byte {self.data.offset}")

    def string(self) -> str:
        value, special = self.length()
        if not special:
            return self.data.take(value).decode("utf-8", "replace")
        if value in (0, 1, 2):
            return str(int.from_bytes(self.data.take(1 << value), "little", signed=True))
        raise RdbFormatError(f"an AUX field is compressed at byte {self.data.offset}")

    def read(self) -> RdbFacts:
        facts = RdbFacts()
        header = self.data.take(9)
        if not header.startswith(MAGIC) or not header[5:].isdigit():
            raise RdbFormatError("not an RDB file (no REDIS header)")
        facts.rdb_version = int(header[5:])
        if facts.rdb_version > MAX_VERSION:
            raise RdbFormatError(
                f"RDB version {facts.rdb_version} is newer than this Lifeboat reads "
                f"(up to {MAX_VERSION}, Redis 7.2)"
            )
        db = "db0"
        expiring = False
        while True:
            opcode = self.data.byte()
            if opcode == _EOF:
                break
            if opcode == _SELECTDB:
                db = f"db{self.count()}"
                facts.keys.setdefault(db, 0)
                facts.expires.setdefault(db, 0)
            elif opcode == _RESIZEDB:
                facts.announced[db] = (self.count(), self.count())
            elif opcode == _EXPIRETIME_MS:
                self.data.skip(8)
                expiring = True
            elif opcode == _EXPIRETIME:
                self.data.skip(4)
                expiring = True
            elif opcode == _AUX:
                name = self.string()
                if name == "redis-ver":
                    facts.redis_version = self.string()
                else:
                    self.skip_string()
            elif opcode in (_IDLE, _FREQ):
                self.count() if opcode == _IDLE else self.data.skip(1)
            elif opcode == _MODULE_AUX:
                self.count()  # the module's id
                self.count()  # when_opcode
                self.count()  # when
                self.skip_module_value()
            elif opcode == _FUNCTION2:
                self.skip_string()
            elif opcode == _SLOT_INFO:
                self.count(), self.count(), self.count()
            elif opcode == _FUNCTION_PRE_GA:
                raise RdbFormatError("the RDB holds pre-release functions (Redis 7.0 RC)")
            else:
                self.skip_string()  # the key
                self.skip_value(opcode)
                facts.keys[db] = facts.keys.get(db, 0) + 1
                if expiring:
                    facts.expires[db] = facts.expires.get(db, 0) + 1
                    expiring = False
        if facts.rdb_version >= 5:
            self.data.skip(CHECKSUM_SIZE)
        facts.size = self.data.offset
        if not self.data.at_end():
            raise RdbFormatError(f"bytes follow the end of the RDB at byte {facts.size}")
        for name, (keys, expires) in facts.announced.items():
            if (facts.keys.get(name, 0), facts.expires.get(name, 0)) != (keys, expires):
                raise RdbFormatError(
                    f"{name}: the RDB announces {keys} keys ({expires} expiring) and holds "
                    f"{facts.keys.get(name, 0)} ({facts.expires.get(name, 0)} expiring)"
                )
        # a database selected but left empty is no database of the snapshot
        facts.keys = {name: n for name, n in facts.keys.items() if n}
        facts.expires = {name: n for name, n in facts.expires.items() if name in facts.keys}
        return facts

    def skip_value(self, kind: int) -> None:
        if kind in _ONE_STRING:
            self.skip_string()
        elif kind in _STRINGS:
            for _ in range(self.count() * _STRINGS[kind]):
                self.skip_string()
        elif kind == _ZSET_2:
            for _ in range(self.count()):
                self.skip_string()
                self.data.skip(8)  # the score, a binary double
        elif kind == _ZSET:
            for _ in range(self.count()):
                self.skip_string()
                size = self.data.byte()  # the score as text; 253-255: nan, +inf, -inf
                if size < 253:
                    self.data.skip(size)
        elif kind == _QUICKLIST_2:
            for _ in range(self.count()):
                self.count()  # the node's container (plain or packed)
                self.skip_string()
        elif kind in _STREAMS:
            self.skip_stream(_STREAMS[kind])
        elif kind == _MODULE_2:
            self.count()  # the module's id
            self.skip_module_value()
        else:
            raise RdbFormatError(
                f"value type {kind} at byte {self.data.offset} is not one this Lifeboat reads "
                "(a module's old format, or a newer Redis)"
            )

    def skip_module_value(self) -> None:
        """A module value in the self-describing format (RDB_MODULE_OPCODE_*)."""
        while True:
            opcode = self.count()
            if opcode == _MODULE_EOF:
                return
            if opcode in (_MODULE_SINT, _MODULE_UINT):
                self.count()
            elif opcode == _MODULE_FLOAT:
                self.data.skip(4)
            elif opcode == _MODULE_DOUBLE:
                self.data.skip(8)
            elif opcode == _MODULE_STRING:
                self.skip_string()
            else:
                raise RdbFormatError(f"unknown module opcode {opcode} at byte {self.data.offset}")

    def skip_stream(self, version: int) -> None:
        for _ in range(self.count()):
            self.skip_string()  # the node's key: its first entry id
            self.skip_string()  # the listpack
        self.count(), self.count(), self.count()  # length, last id (ms, seq)
        if version >= 2:
            for _ in range(5):  # first id, max deleted id, entries added
                self.count()
        for _ in range(self.count()):  # consumer groups
            self.skip_string()
            self.count(), self.count()  # last delivered id
            if version >= 2:
                self.count()  # entries read
            for _ in range(self.count()):  # pending entries: id, delivery time, count
                self.data.skip(16 + 8)
                self.count()
            for _ in range(self.count()):  # consumers
                self.skip_string()
                self.data.skip(8 if version < 3 else 16)  # seen (and active) time
                for _ in range(self.count()):
                    self.data.skip(16)


class FactsTap:
    """A reader that passes source's bytes on unchanged and reads the RDB's facts from them
    on a thread of its own, so the snapshot is read once. A bounded queue between them
    keeps at most a few chunks in memory."""

    def __init__(self, source: Readable, depth: int = 8) -> None:
        self._source = source
        self._chunks: queue.Queue[bytes] = queue.Queue(maxsize=depth)
        self._outcome: RdbFacts | BaseException | None = None
        self._ended = False  # the end (b"") was handed to the reader
        self._thread = threading.Thread(target=self._read, name="rdb-facts", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        seen_end = False

        def next_chunk() -> bytes:
            nonlocal seen_end
            chunk = self._chunks.get()
            seen_end = not chunk
            return chunk

        try:
            self._outcome = read_facts(next_chunk)
        except BaseException as exc:
            self._outcome = exc
            # the reader stops; the stream goes on to its end without it
            while not seen_end:
                next_chunk()

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        if not self._ended:
            self._ended = not data
            self._chunks.put(data)
        return data

    def facts(self) -> RdbFacts:
        """The facts, once the whole stream was read (b"" returned); raises what the
        reader found wrong."""
        if not self._ended:
            self._ended = True
            self._chunks.put(b"")  # a source that stopped short: the reader says so
        self._thread.join()
        outcome = self._outcome
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is not None
        return outcome


def file_facts(path: str, chunk: int = 1 << 20) -> RdbFacts:
    """The facts of an RDB file."""
    with open(path, "rb") as handle:
        return read_facts(lambda: handle.read(chunk))
