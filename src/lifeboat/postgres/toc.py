"""A pg_dump archive's table of contents, as `pg_restore --list` prints it.

A line reads `<id>; <catalog oid> <oid> <TYPE> <schema> <tag> <owner>`, with the schema
`-` for objects outside any schema. Names are printed unquoted, so a space, a dot or a
quote in a schema, tag or owner cannot be told from a separator by looking at the line:
an entry is matched against the names the caller knows exist (from the manifest's
evidence), never split on spaces."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# every entry type pg_dump writes that a table restore selects or has to recognise; a
# longer type comes before the shorter one it starts with ("TABLE DATA" before "TABLE")
KINDS = (
    "MATERIALIZED VIEW DATA",
    "MATERIALIZED VIEW",
    "SEQUENCE OWNED BY",
    "SEQUENCE SET",
    "SEQUENCE",
    "TABLE ATTACH",
    "TABLE DATA",
    "TABLE",
    "INDEX ATTACH",
    "INDEX",
    "FK CONSTRAINT",
    "CHECK CONSTRAINT",
    "CONSTRAINT",
    "DEFAULT ACL",
    "DEFAULT",
    "TRIGGER",
    "POLICY",
    "ROW SECURITY",
    "RULE",
    "COMMENT",
    "ACL",
    "SCHEMA",
    "EXTENSION",
    "TYPE",
    "SHELL TYPE",
    "DOMAIN",
    "FUNCTION",
    "PROCEDURE",
    "AGGREGATE",
    "COLLATION",
    "PROCEDURAL LANGUAGE",
    "TEXT SEARCH CONFIGURATION",
    "TEXT SEARCH DICTIONARY",
    "VIEW",
)


@dataclass(frozen=True)
class TocEntry:
    line: str  # as pg_restore printed it: what --use-list takes back
    kind: str
    rest: str  # "<schema> <tag> <owner>"

    def prefixes(self) -> list[str]:
        """`rest` cut at each space, longest first: the candidates for "<schema> <tag>"."""
        cuts = [i for i, char in enumerate(self.rest) if char == " "]
        return [self.rest, *(self.rest[:i] for i in reversed(cuts))]


def parse(listing: str) -> list[TocEntry]:
    """The entries of a `pg_restore --list` output; comments and unknown types are left out."""
    entries = []
    for line in listing.splitlines():
        if not line or line.startswith(";"):
            continue
        head, semicolon, body = line.partition("; ")
        if not semicolon or not head.strip().isdigit():
            continue
        oids_and_rest = body.split(" ", 2)
        if len(oids_and_rest) < 3:
            continue
        described = oids_and_rest[2]
        for kind in sorted(KINDS, key=len, reverse=True):
            if described.startswith(kind + " "):
                entries.append(TocEntry(line, kind, described[len(kind) + 1 :].rstrip()))
                break
    return entries


def key(schema: str, *names: str) -> str:
    """How an object's schema and tag read in a listing ("-" when it has no schema)."""
    return " ".join([schema or "-", *names])


def claim(entries: Iterable[TocEntry], known: Iterable[str]) -> dict[str, list[TocEntry]]:
    """Each entry under the longest known "<schema> <tag...>" its text starts with.

    The longest wins so that, with tables `a` and `a b` in one schema, the entries of
    `a b` are not taken for entries of `a`. Entries matching no known name are left out."""
    wanted = set(known)
    found: dict[str, list[TocEntry]] = {}
    for entry in entries:
        for prefix in entry.prefixes():
            if prefix in wanted:
                found.setdefault(prefix, []).append(entry)
                break
    return found


@dataclass(frozen=True)
class Identifier:
    raw: str  # the name itself
    written: str  # as format('%I') writes it, quoted where needed (pg_dump's fmtId agrees)


def identifiers(name: str) -> list[Identifier]:
    """`schema.table` as format('%I.%I') writes it -> its parts ("a.b" stays one)."""
    parts: list[Identifier] = []
    i, length = 0, len(name)
    while True:
        start = i
        if i < length and name[i] == '"':
            raw = []
            i += 1
            while True:
                if i >= length:
                    raise ValueError(f"unterminated quoted identifier in {name!r}")
                if name[i] == '"':
                    if name[i + 1 : i + 2] != '"':
                        break
                    i += 1  # a doubled quote stands for one
                raw.append(name[i])
                i += 1
            i += 1  # the closing quote
            parts.append(Identifier("".join(raw), name[start:i]))
        else:
            end = name.find(".", i)
            i = length if end < 0 else end
            parts.append(Identifier(name[start:i], name[start:i]))
        if i == length:
            return parts
        if name[i] != ".":
            raise ValueError(f"{name!r} is not a dotted list of identifiers")
        i += 1
