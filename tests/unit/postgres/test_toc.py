"""The table of contents of a pg_dump archive, read from `pg_restore --list` with names
that have spaces, dots, quotes and unicode in them."""

from __future__ import annotations

import pytest

from lifeboat.postgres import toc

pytestmark = pytest.mark.unit

# as pg_restore --list prints them: names unquoted, owners with spaces and dots too
LISTING = """\
;
; Archive created at 2026-12-06 16:00:00 UTC
;     dbname: prod
;
; Selected TOC Entries:
;
7; 2615 16598 SCHEMA - Sales EU wms_owner
2770; 0 0 ACL - SCHEMA "Sales EU" wms_owner
909; 1247 16427 TYPE public mpaa_rating wms_owner
279; 1255 16441 FUNCTION public default_rate(public.mpaa_rating) wms.app
239; 1259 16600 TABLE Sales EU Order Items report reader
235; 1259 16582 TABLE public a.b wms_owner
240; 1259 16583 TABLE public a wms_owner
241; 1259 16584 TABLE public a b wms_owner
2776; 0 0 ACL public TABLE "a.b" wms_owner
236; 1259 16589 SEQUENCE public café ☕_id_seq wms_owner
2780; 0 0 SEQUENCE OWNED BY public café ☕_id_seq wms_owner
2535; 2604 16593 DEFAULT public café ☕ id wms_owner
2757; 0 16600 TABLE DATA Sales EU Order Items report reader
2753; 0 16582 TABLE DATA public a.b wms_owner
2754; 0 16583 TABLE DATA public a wms_owner
2755; 0 16584 TABLE DATA public a b wms_owner
2758; 0 16623 MATERIALIZED VIEW DATA public rentals_per_film wms_owner
2808; 0 0 SEQUENCE SET Sales EU Order Items_item_id_seq wms_owner
2573; 2606 16609 CONSTRAINT Sales EU Order Items Order Items_pkey report reader
2580; 0 0 INDEX ATTACH public payment_default_pkey wms_owner
2588; 2606 16610 FK CONSTRAINT Sales EU Order Items Order Items_customer_id_fkey wms_owner
2519; 0 0 TABLE ATTACH public payment_default wms_owner
2590; 2620 16471 TRIGGER public we"ird name with "quotes" wms_owner
"""


def test_every_entry_is_read_with_its_kind_and_the_comments_are_skipped() -> None:
    entries = toc.parse(LISTING)
    assert len(entries) == len([line for line in LISTING.splitlines() if line[:1].isdigit()])
    kinds = {e.line.split(";")[0]: e.kind for e in entries}
    assert kinds["2757"] == "TABLE DATA"  # not TABLE
    assert kinds["2758"] == "MATERIALIZED VIEW DATA"
    assert kinds["2780"] == "SEQUENCE OWNED BY"
    assert kinds["2808"] == "SEQUENCE SET"
    assert kinds["2588"] == "FK CONSTRAINT"
    assert kinds["2580"] == "INDEX ATTACH"
    assert kinds["2519"] == "TABLE ATTACH"
    by_id = {e.line.split(";")[0]: e for e in entries}
    assert by_id["239"].rest == "Sales EU Order Items report reader"
    assert by_id["239"].line == "239; 1259 16600 TABLE Sales EU Order Items report reader"


def test_entries_go_to_the_longest_known_name_they_start_with() -> None:
    entries = [e for e in toc.parse(LISTING) if e.kind in ("TABLE", "TABLE DATA")]
    known = {
        toc.key("public", "a"),
        toc.key("public", "a b"),
        toc.key("public", "a.b"),
        toc.key("Sales EU", "Order Items"),
    }
    claimed = toc.claim(entries, known)
    ids = {name: sorted(e.line.split(";")[0] for e in found) for name, found in claimed.items()}
    assert ids == {
        "public a": ["240", "2754"],
        "public a b": ["241", "2755"],  # not taken for table "a" with owner "b wms_owner"
        "public a.b": ["235", "2753"],
        "Sales EU Order Items": ["239", "2757"],
    }


def test_an_entry_no_known_name_claims_is_left_out() -> None:
    claimed = toc.claim(toc.parse(LISTING), {toc.key("public", "nope")})
    assert claimed == {}


def test_a_table_bound_entry_is_claimed_by_its_table() -> None:
    entries = [e for e in toc.parse(LISTING) if e.kind in ("CONSTRAINT", "FK CONSTRAINT")]
    claimed = toc.claim(entries, {toc.key("Sales EU", "Order Items")})
    assert [e.line.split(";")[0] for e in claimed["Sales EU Order Items"]] == ["2573", "2588"]


def test_a_key_without_schema_reads_as_pg_restore_prints_it() -> None:
    assert toc.key("", "Sales EU") == "- Sales EU"
    assert toc.key("public", "café ☕", "id") == "public café ☕ id"


@pytest.mark.parametrize(
    ("written", "raw"),
    [
        ("public.film", ["public", "film"]),
        ('public."a.b"', ["public", "a.b"]),
        ('"Sales EU"."Order Items"', ["Sales EU", "Order Items"]),
        ('public."café ☕"', ["public", "café ☕"]),
        ('"we""ird"."x.y"."z"', ['we"ird', "x.y", "z"]),
        ('public."a.b".pkey', ["public", "a.b", "pkey"]),
    ],
)
def test_identifiers_split_only_outside_quotes(written: str, raw: list[str]) -> None:
    parts = toc.identifiers(written)
    assert [p.raw for p in parts] == raw
    assert ".".join(p.written for p in parts) == written


@pytest.mark.parametrize("broken", ['public."unterminated', 'public."a"b'])
def test_a_malformed_name_is_refused(broken: str) -> None:
    with pytest.raises(ValueError):
        toc.identifiers(broken)
