"""Which tables `restore --table` names mean, and which archive entries it restores."""

from __future__ import annotations

import pytest

from lifeboat.errors import RestoreError
from lifeboat.postgres import toc
from lifeboat.repo.manifest import Evidence, Manifest, TableFacts
from lifeboat.sources.postgres.table_plan import Target, make_plan, select
from tests.unit.repo.test_repository import make_manifest

pytestmark = pytest.mark.unit

FACTS = {
    "public.language": TableFacts(
        columns=["language_id", "name"], sequences=["public.language_language_id_seq"]
    ),
    "public.film": TableFacts(
        columns=["film_id", "title", "language_id"],
        sequences=["public.film_film_id_seq"],
        references={"film_language_id_fkey": "public.language"},
    ),
    "public.payment": TableFacts(
        partitioned=True,
        columns=["payment_id", "amount"],
        sequences=["public.payment_payment_id_seq"],
    ),
    "public.payment_2026": TableFacts(
        partitioned=True, partition_of="public.payment", inherited=["payment_pkey"]
    ),
    "public.payment_2026_01": TableFacts(
        partition_of="public.payment_2026", inherited=["payment_pkey"]
    ),
    "public.payment_default": TableFacts(partition_of="public.payment", inherited=["payment_pkey"]),
    'public."a.b"': TableFacts(columns=["id"]),
    '"Sales EU"."Order Items"': TableFacts(columns=["item_id"]),
    "other.film": TableFacts(columns=["id"]),
}
ROWS = {
    name: 10
    for name in FACTS
    if not FACTS[name].partitioned  # a partitioned table's rows are its partitions'
}


def backup(facts: dict[str, TableFacts] | None = None) -> Manifest:
    return make_manifest(
        evidence=Evidence(
            row_counts=ROWS,
            indexes=["public.film.film_pkey", "public.film.film_title_idx"],
            constraints=["public.film.film_pkey", "public.film.film_language_id_fkey"],
            tables=FACTS if facts is None else facts,
        )
    )


@pytest.mark.parametrize(
    ("typed", "table"),
    [
        ("language", "public.language"),
        ("public.language", "public.language"),
        ("a.b", 'public."a.b"'),
        ('"a.b"', 'public."a.b"'),
        ('public."a.b"', 'public."a.b"'),
        ("Order Items", '"Sales EU"."Order Items"'),
        ("Sales EU.Order Items", '"Sales EU"."Order Items"'),
        ('"Sales EU"."Order Items"', '"Sales EU"."Order Items"'),
        ("other.film", "other.film"),
    ],
)
def test_a_table_may_be_named_with_or_without_schema_and_quotes(typed: str, table: str) -> None:
    assert select(backup(), [typed]).tables == [table]


def test_a_partitioned_table_brings_its_partitions_and_theirs() -> None:
    chosen = select(backup(), ["payment", "payment_2026_01"])
    assert chosen.asked == ["public.payment", "public.payment_2026_01"]
    assert chosen.tables == [
        "public.payment",
        "public.payment_2026",
        "public.payment_default",
        "public.payment_2026_01",
    ]
    assert chosen.with_rows == ["public.payment_default", "public.payment_2026_01"]


def test_parents_come_before_their_partitions_however_they_were_named() -> None:
    chosen = select(backup(), ["payment_2026_01", "public.payment_2026", "a.b"])
    assert chosen.tables == [
        'public."a.b"',
        "public.payment_2026",
        "public.payment_2026_01",
    ]


def test_a_name_two_tables_answer_to_is_refused_naming_both() -> None:
    with pytest.raises(RestoreError) as refused:
        select(backup(), ["film"])
    assert "ambiguous" in str(refused.value)
    assert "other.film, public.film" in str(refused.value)


def test_an_unknown_name_is_refused_with_close_matches() -> None:
    with pytest.raises(RestoreError) as refused:
        select(backup(), ["langage"])
    assert "not in this backup" in str(refused.value)
    assert str(refused.value).endswith("close matches: public.language")


def test_a_backup_without_table_facts_still_knows_its_tables_by_their_rows() -> None:
    assert select(backup(facts={}), ["a.b"]).tables == ['public."a.b"']
    with pytest.raises(RestoreError, match="not in this backup"):
        select(backup(facts={}), ["payment"])  # a partitioned table has no rows of its own


LISTING = """\
6; 2615 2200 SCHEMA - public wms_owner
909; 1247 16427 TYPE public mpaa_rating wms_owner
280; 1255 16440 FUNCTION public last_updated() wms_owner
220; 1259 16443 TABLE public language wms_owner
219; 1259 16442 SEQUENCE public language_language_id_seq wms_owner
2797; 0 0 SEQUENCE OWNED BY public language_language_id_seq wms_owner
222; 1259 16451 TABLE public film wms_owner
2790; 0 0 COMMENT public TABLE film wms_owner
2791; 0 0 ACL public TABLE film wms_owner
221; 1259 16450 SEQUENCE public film_film_id_seq wms_owner
2793; 0 0 SEQUENCE OWNED BY public film_film_id_seq wms_owner
2794; 0 0 ACL public SEQUENCE film_film_id_seq wms_owner
223; 1259 16452 SEQUENCE public lot_code_seq wms_owner
240; 1259 16615 VIEW public film_list wms_owner
2522; 2604 16454 DEFAULT public film film_id wms_owner
2520; 2604 16446 DEFAULT public language language_id wms_owner
2741; 0 16451 TABLE DATA public film wms_owner
2739; 0 16443 TABLE DATA public language wms_owner
2812; 0 0 SEQUENCE SET public film_film_id_seq wms_owner
2813; 0 0 SEQUENCE SET public language_language_id_seq wms_owner
2816; 0 0 SEQUENCE SET public lot_code_seq wms_owner
2544; 2606 16463 CONSTRAINT public film film_pkey wms_owner
2541; 2606 16449 CONSTRAINT public language language_pkey wms_owner
2542; 1259 16469 INDEX public film_title_idx wms_owner
2589; 2620 16470 TRIGGER public film last_updated wms_owner
2581; 2606 16464 FK CONSTRAINT public film film_language_id_fkey wms_owner
"""


def ids(entries: list[toc.TocEntry]) -> list[str]:
    return [e.line.split(";")[0] for e in entries]


def test_into_an_existing_table_only_its_rows_and_sequence_come() -> None:
    chosen = select(backup(), ["public.film"])
    target = Target(kinds={"public.film": "r"}, objects={"RELATION public language"})
    plan = make_plan(toc.parse(LISTING), chosen, target)
    assert ids(plan.entries) == ["2741"]
    assert ids(plan.sequence_sets) == ["2812"]
    assert plan.created == [] and plan.notes == []


def test_a_created_table_brings_what_it_needs_and_leaves_out_a_dangling_foreign_key() -> None:
    chosen = select(backup(), ["public.film"])
    new_database = Target(objects={"SCHEMA - public", "ROUTINE public last_updated"})
    plan = make_plan(toc.parse(LISTING), chosen, new_database)
    assert ids(plan.entries) == [
        "909",  # the type; the schema and the function are there already
        "222",
        "2790",
        "2791",
        "221",
        "2793",
        "2794",
        "223",  # a free-standing sequence: a default may use it
        "2522",
        "2741",
        "2544",
        "2542",
        "2589",
    ]
    assert ids(plan.sequence_sets) == ["2812", "2816"]
    assert plan.created == ["public.film"]
    assert plan.left_out == {("public.film", "film_language_id_fkey")}
    assert plan.notes == [
        "foreign key film_language_id_fkey of public.film left out: public.language is "
        "neither restored nor in the target"
    ]


def test_a_foreign_key_to_a_table_restored_with_it_is_kept() -> None:
    chosen = select(backup(), ["public.film", "language"])
    plan = make_plan(toc.parse(LISTING), chosen, Target(objects={"SCHEMA - public"}))
    assert "2581" in ids(plan.entries)
    assert {"220", "219", "2797", "2520", "2739", "2541"} <= set(ids(plan.entries))
    assert plan.notes == []


def test_an_older_backup_sets_the_sequences_the_target_says_the_table_owns() -> None:
    chosen = select(backup(facts={}), ["public.film"])
    target = Target(
        kinds={"public.film": "r"}, sequences={"public.film": ["public.film_film_id_seq"]}
    )
    plan = make_plan(toc.parse(LISTING), chosen, target)
    assert ids(plan.entries) == ["2741"]
    assert ids(plan.sequence_sets) == ["2812"]
