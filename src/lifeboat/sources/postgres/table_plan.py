"""Which tables a table restore brings back, and which entries of the backup's archive
it restores for them: pure decisions over the manifest's evidence, the archive's listing
(`pg_restore --list`) and what the target database already has."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lifeboat.errors import RestoreError
from lifeboat.postgres import toc
from lifeboat.postgres.toc import TocEntry
from lifeboat.repo.manifest import Evidence, Manifest, TableFacts

# objects a created table may need, brought along when the target lacks them
SUPPORT_KINDS = {
    "SCHEMA": "SCHEMA",
    "EXTENSION": "EXTENSION",
    "PROCEDURAL LANGUAGE": "LANGUAGE",
    "TYPE": "TYPE",
    "SHELL TYPE": "TYPE",
    "DOMAIN": "TYPE",
    "COLLATION": "COLLATION",
    "FUNCTION": "ROUTINE",
    "PROCEDURE": "ROUTINE",
    "AGGREGATE": "ROUTINE",
    "TEXT SEARCH DICTIONARY": "TS DICTIONARY",
    "TEXT SEARCH CONFIGURATION": "TS CONFIGURATION",
    "SEQUENCE": "RELATION",
}
# entries that belong to one table and come with it when it is created
TABLE_KINDS = (
    "TABLE",
    "DEFAULT",
    "CONSTRAINT",
    "CHECK CONSTRAINT",
    "TRIGGER",
    "POLICY",
    "ROW SECURITY",
    "RULE",
)


# ------------------------------------------------------------------------------ names


@dataclass
class Selection:
    """The tables a restore brings back, as format('%I.%I') writes them."""

    evidence: Evidence
    asked: list[str]
    tables: list[str]  # the asked ones, each partitioned one followed by its partitions

    def facts(self, name: str) -> TableFacts:
        return self.evidence.tables.get(name) or TableFacts()

    @property
    def with_rows(self) -> list[str]:
        """The tables holding rows (a partitioned table's rows are in its partitions)."""
        return [name for name in self.tables if name in self.evidence.row_counts]


def _known_tables(evidence: Evidence) -> list[str]:
    return sorted(set(evidence.tables) | set(evidence.row_counts))


def _spellings(name: str) -> set[str]:
    """What a user may type for table `name`: as PostgreSQL writes it, or with the raw
    names, with or without the schema."""
    schema, table = toc.identifiers(name)
    return {name, table.written, table.raw, f"{schema.raw}.{table.raw}"}


def select(manifest: Manifest, names: Sequence[str]) -> Selection:
    """Resolve the user's table names against the backup; a partitioned table brings its
    partitions. An unknown or ambiguous name is refused, naming close matches."""
    evidence = manifest.checks
    known = _known_tables(evidence)
    spelled = {name: _spellings(name) for name in known}
    asked: list[str] = []
    for wanted in names:
        matches = [name for name in known if wanted in spelled[name]]
        if len(matches) > 1:
            raise RestoreError(
                f"table {wanted!r} is ambiguous in backup {manifest.id}, it may be any of "
                + ", ".join(matches)
                + ": name its schema too, in double quotes where a name has a dot"
            )
        if not matches:
            lowered = {spelling.lower(): n for n in known for spelling in spelled[n]}
            close = difflib.get_close_matches(wanted.lower(), lowered, n=5)
            hint = sorted({lowered[c] for c in close})
            raise RestoreError(
                f"table {wanted!r} is not in this backup ({manifest.id})"
                + (f"; close matches: {', '.join(hint)}" if hint else "")
            )
        if matches[0] not in asked:
            asked.append(matches[0])
    tables: list[str] = []
    for name in asked:
        for member in [name, *_partitions(evidence, name)]:
            if member not in tables:
                tables.append(member)
    # parents before their partitions, however they were named
    tables.sort(key=lambda name: _depth(evidence, name))
    return Selection(evidence, asked, tables)


def _depth(evidence: Evidence, name: str) -> int:
    """How many partitioned tables `name` is below."""
    parent = evidence.tables[name].partition_of if name in evidence.tables else None
    return 0 if parent is None else 1 + _depth(evidence, parent)


def _partitions(evidence: Evidence, parent: str) -> list[str]:
    """Every partition below `parent`, partitions of partitions too."""
    found = []
    for name, facts in sorted(evidence.tables.items()):
        if facts.partition_of == parent:
            found += [name, *_partitions(evidence, name)]
    return found


# ----------------------------------------------------------------------------- target


@dataclass
class Target:
    """What the target database has of the named tables (nothing, for a new one)."""

    kinds: dict[str, str] = field(default_factory=dict)  # table -> relkind
    sequences: dict[str, list[str]] = field(default_factory=dict)  # table -> owned
    # "<family> <schema> <name>" of what it has (see restore_tables._TARGET_OBJECTS_SQL)
    objects: set[str] = field(default_factory=set)

    def has(self, name: str) -> bool:
        """Whether the target has table `name` (one of the named ones)."""
        return name in self.kinds

    def has_relation(self, name: str) -> bool:
        """Whether the target has any relation `name` (format('%I.%I'))."""
        schema, table = toc.identifiers(name)
        return f"RELATION {schema.raw} {table.raw}" in self.objects


def _present(selection: Selection, target: Target) -> Callable[[str], bool]:
    """Whether a table is there once the restore is done: restored, or in the target."""
    restored = set(selection.tables)
    return lambda name: name in restored or target.has_relation(name)


# ------------------------------------------------------------------------------- plan


@dataclass
class Plan:
    entries: list[TocEntry]  # for the one pg_restore feeding the session
    sequence_sets: list[TocEntry]  # run last: setval is not undone by a rollback
    created: list[str]  # tables the restore creates
    left_out: set[tuple[str, str]]  # foreign keys (table, constraint) not created
    notes: list[str]


def _key(name: str, *more: str) -> str:
    """`schema.table` (format('%I.%I')) as it starts a listing's entry."""
    schema, table = toc.identifiers(name)
    return toc.key(schema.raw, table.raw, *more)


def _written(name: str) -> tuple[str, str]:
    schema, table = toc.identifiers(name)
    return schema.raw, table.written


class _Listing:
    """The listing's entries, each claimed by the table, index or sequence it belongs to
    (claimed against every name the backup has, so that the longest name wins)."""

    def __init__(self, entries: list[TocEntry], selection: Selection, target: Target) -> None:
        evidence = selection.evidence
        self.entries = entries
        tables = {_key(name) for name in _known_tables(evidence)}
        self.by_table = toc.claim(
            (e for e in entries if e.kind in (*TABLE_KINDS, "TABLE DATA", "TABLE ATTACH")), tables
        )
        self.foreign = toc.claim((e for e in entries if e.kind == "FK CONSTRAINT"), tables)
        self.index_tables: dict[str, str] = {}  # index key -> its table
        for index in evidence.indexes:
            schema, table, name = toc.identifiers(index)
            self.index_tables[toc.key(schema.raw, name.raw)] = f"{schema.written}.{table.written}"
        self.indexes = toc.claim(
            (e for e in entries if e.kind in ("INDEX", "INDEX ATTACH")), self.index_tables
        )
        owned = {seq for facts in evidence.tables.values() for seq in facts.sequences}
        owned |= {seq for found in target.sequences.values() for seq in found}
        self.sequences = toc.claim(
            (e for e in entries if e.kind.startswith("SEQUENCE")), {_key(s) for s in owned}
        )

    def of_table(self, name: str, *kinds: str) -> list[TocEntry]:
        return [e for e in self.by_table.get(_key(name), []) if e.kind in kinds]

    def of_sequence(self, name: str, *kinds: str) -> list[TocEntry]:
        return [e for e in self.sequences.get(_key(name), []) if e.kind in kinds]

    def of_indexes(self, table: str, *kinds: str) -> list[TocEntry]:
        return [
            e
            for key, owner in self.index_tables.items()
            if owner == table
            for e in self.indexes.get(key, [])
            if e.kind in kinds
        ]


@dataclass
class _Picked:
    entries: list[TocEntry] = field(default_factory=list)
    sequence_sets: list[TocEntry] = field(default_factory=list)
    left_out: set[tuple[str, str]] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def make_plan(entries: list[TocEntry], selection: Selection, target: Target) -> Plan:
    """Pick the listing's entries the restore needs, in the listing's order (pg_restore
    reads the archive from a pipe and cannot go back)."""
    listing = _Listing(entries, selection, target)
    created = [name for name in selection.tables if not target.has(name)]
    picked = _Picked()
    for name in selection.with_rows:
        picked.entries += listing.of_table(name, "TABLE DATA")
    for name in selection.tables:
        owned = selection.facts(name).sequences
        if not selection.evidence.tables:  # an older backup: the target knows
            owned = target.sequences.get(name, [])
        for seq in owned:
            picked.sequence_sets += listing.of_sequence(seq, "SEQUENCE SET")
    for name in created:
        _pick_definition(listing, selection, target, name, picked)
    if created:
        _pick_support(listing, selection, target, picked)
    # a partition created under a parent the target has is attached last, once its rows,
    # indexes and constraints are in: ATTACH PARTITION then adopts its indexes and
    # constraints (it would otherwise create its own, and the archive's would collide),
    # and the parent's row triggers, cloned onto it, do not fire for the restored rows
    late = {
        id(e)
        for name in created
        if _attached_to_target(selection, target, name)
        for e in listing.of_table(name, "TABLE ATTACH")
    }
    chosen = {id(e) for e in picked.entries} - late
    sets = {id(e) for e in picked.sequence_sets}
    return Plan(
        entries=[e for e in entries if id(e) in chosen] + [e for e in entries if id(e) in late],
        sequence_sets=[e for e in entries if id(e) in sets],
        created=created,
        left_out=picked.left_out,
        notes=picked.notes,
    )


def _attached_to_target(selection: Selection, target: Target, name: str) -> bool:
    """Whether table `name` is a partition whose parent the target has (and keeps)."""
    parent = selection.facts(name).partition_of
    return parent is not None and target.has_relation(parent)


def _pick_definition(
    listing: _Listing, selection: Selection, target: Target, name: str, picked: _Picked
) -> None:
    """What creates table `name`: its definition, defaults, constraints, triggers,
    policies, owned sequences, indexes, foreign keys to tables that will be there,
    comments and grants; attached to its parent when that will be there."""
    facts = selection.facts(name)
    present = _present(selection, target)
    attached = facts.partition_of is not None and present(facts.partition_of)
    picked.entries += listing.of_table(name, *TABLE_KINDS)
    # attached late to a parent the target has, the partition's indexes are adopted then
    early = attached and not _attached_to_target(selection, target, name)
    picked.entries += listing.of_indexes(name, "INDEX", *(["INDEX ATTACH"] if early else []))
    if attached:
        picked.entries += listing.of_table(name, "TABLE ATTACH")
    for seq in facts.sequences:
        picked.entries += listing.of_sequence(seq, "SEQUENCE", "SEQUENCE OWNED BY")
    for seq in _borrowed_sequences(listing, selection, name, present):
        picked.entries += listing.of_sequence(seq, "SEQUENCE")
        picked.sequence_sets += listing.of_sequence(seq, "SEQUENCE SET")
    for entry in listing.foreign.get(_key(name), []):
        constraint = _constraint_of(entry, name, facts)
        referenced = facts.references.get(constraint or "")
        if referenced is not None and present(referenced):
            picked.entries.append(entry)
            continue
        picked.left_out.add((name, constraint or ""))
        picked.notes.append(
            f"foreign key {constraint or '(unknown)'} of {name} left out: "
            + (
                f"{referenced} is neither restored nor in the target"
                if referenced
                else "this backup does not say which table it references"
            )
        )
    prefixes = _comment_and_acl_prefixes(name, facts)
    picked.entries += [
        e for e in listing.entries if e.kind in ("COMMENT", "ACL") and e.rest.startswith(prefixes)
    ]


def _pick_support(listing: _Listing, selection: Selection, target: Target, picked: _Picked) -> None:
    """What created tables may need and the target lacks: schemas, extensions, types,
    functions..., and the sequences no table owns (a default's nextval() may use one;
    which sequences those are is known only from the backup's table facts)."""
    owned = {id(e) for found in listing.sequences.values() for e in found}
    for entry in listing.entries:
        family = SUPPORT_KINDS.get(entry.kind)
        if family is None or _target_has(target, family, entry):
            continue
        if entry.kind == "SEQUENCE":
            if id(entry) in owned or not selection.evidence.tables:
                continue
            picked.sequence_sets += [
                e for e in listing.entries if e.kind == "SEQUENCE SET" and e.rest == entry.rest
            ]
        picked.entries.append(entry)


def _borrowed_sequences(
    listing: _Listing, selection: Selection, name: str, present: Callable[[str], bool]
) -> list[str]:
    """The serial sequences of a partition's missing ancestors: the partition's columns
    have their defaults, so it needs them. (An identity sequence is part of its table's
    definition, with no OWNED BY entry, and cannot come without the table.)"""
    borrowed = []
    parent = selection.facts(name).partition_of
    while parent is not None and not present(parent):
        for seq in selection.facts(parent).sequences:
            if listing.of_sequence(seq, "SEQUENCE OWNED BY"):
                borrowed.append(seq)
        parent = selection.facts(parent).partition_of
    return borrowed


def _constraint_of(entry: TocEntry, table: str, facts: TableFacts) -> str | None:
    """The constraint an FK CONSTRAINT entry of `table` is: the longest known one its
    text continues with."""
    start = _key(table) + " "
    names = [
        c
        for c in facts.references
        if entry.rest == start + c or entry.rest.startswith(start + c + " ")
    ]
    return max(names, key=len) if names else None


def _comment_and_acl_prefixes(name: str, facts: TableFacts) -> tuple[str, ...]:
    """How COMMENT and ACL entries of a table, its columns and its owned sequences begin
    (their tags quote names as PostgreSQL does)."""
    schema, table = _written(name)
    prefixes = [f"{schema} TABLE {table} ", f"{schema} COLUMN {table}."]
    for seq in facts.sequences:
        seq_schema, seq_name = _written(seq)
        prefixes.append(f"{seq_schema} SEQUENCE {seq_name} ")
    return tuple(prefixes)


def _target_has(target: Target, family: str, entry: TocEntry) -> bool:
    if family == "ROUTINE":  # the tag is name(arguments): compare the names
        return f"{family} {entry.rest.split('(', 1)[0]}" in target.objects
    return any(f"{family} {prefix}" in target.objects for prefix in entry.prefixes())


def check_listing(plan: Plan) -> None:
    """Every table to create has its entry in the archive (an archive made otherwise than
    by Lifeboat's pg_dump might lack one)."""
    made = {e.rest for e in plan.entries if e.kind == "TABLE"}
    for name in plan.created:
        if not any(rest == _key(name) or rest.startswith(_key(name) + " ") for rest in made):
            raise RestoreError(f"the backup's archive has no definition of table {name}")


def expected_absent(plan: Plan, selection: Selection, target: Target) -> set[tuple[str, str]]:
    """Constraints (table, name) the evidence lists that the restore rightly does not
    create: the foreign keys left out, and what a partition restored without its parent
    would have from that parent."""
    absent = set(plan.left_out)
    present = _present(selection, target)
    for name in plan.created:  # parents come before their partitions
        parent = selection.facts(name).partition_of
        for constraint in selection.facts(name).inherited:
            if parent is not None and (not present(parent) or (parent, constraint) in absent):
                absent.add((name, constraint))
    return absent
