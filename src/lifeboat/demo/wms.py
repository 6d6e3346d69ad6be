"""Sample dataset: the stock and quality records of a food-production warehouse.

The dataset follows a small HACCP-style workflow:

* ``lots`` -- raw material received at the dock (supplier, temperature at intake, quantity),
* ``production_runs`` -- a production line consumes a lot and produces packed units,
* ``qc_decisions`` -- an inspector releases, holds or rejects the output of a run, with
  measurements (JSON) and a photo (bytea),
* ``qc_decision_audit`` -- filled by a trigger whenever a decision is changed,
* ``released_lots`` -- a view of lots whose every inspected run was released.

All data is generated server-side with ``INSERT ... SELECT generate_series`` in batches, so
loading a gigabyte takes about a minute. The content mixes free text, hex codes, numbers,
JSON and partly compressible binary data, so that it compresses roughly like real
business data (zstd level 3 reaches a few-fold ratio, not fifty-fold).

The generated data is a pure function of ``seed`` and the planned row counts (which follow
from ``target_bytes`` and the size of the empty database): structural values (foreign keys
and timestamps) come from a hash of the row id, everything else from ``random()`` after
``setseed()`` at the start of every batch and table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import psycopg

__all__ = ["TABLES", "create_schema", "load", "plan_counts"]

#: Tables filled by :func:`load`, in load order.
TABLES: tuple[str, ...] = ("lots", "production_runs", "qc_decisions", "qc_decision_audit")

RUNS_PER_LOT = 4
QC_PER_TWO_RUNS = 3  # three decisions for every two runs (re-inspections)

#: Approximate on-disk bytes (heap, TOAST and indexes) per lot including its runs and
#: decisions. Calibrated on PostgreSQL 15; used to turn ``target_bytes`` into row counts.
BYTES_PER_LOT = 16_000

#: Lots per batch; every batch (lots, their runs and decisions) is one transaction.
LOTS_PER_BATCH = 10_000

#: Even the smallest dataset has this many lots (a few hundred rows in total).
MIN_LOTS = 50

SCHEMA_SQL = """
CREATE TABLE lots (
    id            bigserial PRIMARY KEY,
    lot_code      text NOT NULL UNIQUE,
    product       text NOT NULL,
    supplier      text NOT NULL,
    received_at   timestamptz NOT NULL,
    quantity_kg   numeric(12,3) NOT NULL CHECK (quantity_kg > 0),
    temperature_c numeric(5,2),
    attributes    jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE production_runs (
    id           bigserial PRIMARY KEY,
    lot_id       bigint NOT NULL REFERENCES lots (id),
    line         text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    output_units integer NOT NULL CHECK (output_units >= 0),
    recipe       jsonb NOT NULL,
    notes        text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (finished_at IS NULL OR finished_at >= started_at)
);

CREATE TABLE qc_decisions (
    id           bigserial PRIMARY KEY,
    run_id       bigint NOT NULL REFERENCES production_runs (id),
    inspector    text NOT NULL,
    decision     text NOT NULL CHECK (decision IN ('release', 'hold', 'reject')),
    decided_at   timestamptz NOT NULL,
    measurements jsonb NOT NULL,
    photo        bytea,
    comment      text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE qc_decision_audit (
    id           bigserial PRIMARY KEY,
    decision_id  bigint NOT NULL REFERENCES qc_decisions (id) ON DELETE CASCADE,
    old_decision text NOT NULL,
    new_decision text NOT NULL,
    changed_at   timestamptz NOT NULL,
    changed_by   text NOT NULL DEFAULT current_user
);

CREATE INDEX lots_received_at_idx ON lots (received_at);
CREATE INDEX lots_product_idx ON lots (product);
CREATE INDEX production_runs_lot_id_idx ON production_runs (lot_id);
CREATE INDEX production_runs_started_at_idx ON production_runs (started_at);
CREATE INDEX qc_decisions_run_id_idx ON qc_decisions (run_id);
CREATE INDEX qc_decisions_decided_at_idx ON qc_decisions (decided_at);
CREATE INDEX qc_decisions_open_idx ON qc_decisions (decision, decided_at)
    WHERE decision <> 'release';
CREATE INDEX qc_decision_audit_decision_id_idx ON qc_decision_audit (decision_id);

-- Keep updated_at current unless the statement sets it explicitly.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER lots_set_updated_at BEFORE UPDATE ON lots
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER production_runs_set_updated_at BEFORE UPDATE ON production_runs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER qc_decisions_set_updated_at BEFORE UPDATE ON qc_decisions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Every change of a QC decision is recorded (HACCP requires traceable corrections).
CREATE FUNCTION audit_qc_decision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO qc_decision_audit (decision_id, old_decision, new_decision, changed_at)
    VALUES (NEW.id, OLD.decision, NEW.decision, NEW.updated_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER qc_decisions_audit AFTER UPDATE OF decision ON qc_decisions
    FOR EACH ROW WHEN (OLD.decision IS DISTINCT FROM NEW.decision)
    EXECUTE FUNCTION audit_qc_decision();

CREATE VIEW released_lots AS
SELECT l.id AS lot_id,
       l.lot_code,
       l.product,
       l.supplier,
       l.received_at,
       r.runs,
       r.output_units,
       q.released_at
FROM lots AS l
JOIN (
    SELECT lot_id, count(*) AS runs, sum(output_units) AS output_units
    FROM production_runs
    GROUP BY lot_id
) AS r ON r.lot_id = l.id
JOIN (
    SELECT pr.lot_id, max(d.decided_at) AS released_at
    FROM production_runs AS pr
    JOIN qc_decisions AS d ON d.run_id = pr.id
    GROUP BY pr.lot_id
    HAVING bool_and(d.decision = 'release')
) AS q ON q.lot_id = l.id;
"""


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# (product, storage class) -- storage class drives the intake temperature.
PRODUCTS: tuple[tuple[str, str], ...] = (
    ("Chicken breast fillet", "chilled"),
    ("Chicken thigh, boneless", "chilled"),
    ("Turkey mince", "chilled"),
    ("Pork shoulder", "chilled"),
    ("Beef brisket", "chilled"),
    ("Smoked salmon side", "chilled"),
    ("Cod loin", "frozen"),
    ("Atlantic prawns, cooked", "frozen"),
    ("Mozzarella 45% fat", "chilled"),
    ("Cheddar, mature", "chilled"),
    ("Greek yoghurt 10%", "chilled"),
    ("Whole milk, pasteurised", "chilled"),
    ("Double cream", "chilled"),
    ("Free-range eggs, size M", "chilled"),
    ("Butter, unsalted", "chilled"),
    ("Spinach, baby leaf", "chilled"),
    ("Rocket", "chilled"),
    ("Cherry tomatoes", "ambient"),
    ("Red onions", "ambient"),
    ("Potatoes, Maris Piper", "ambient"),
    ("Carrots, washed", "chilled"),
    ("Garden peas", "frozen"),
    ("Sweetcorn kernels", "frozen"),
    ("Strawberries", "chilled"),
    ("Raspberries", "frozen"),
    ("Wheat flour T55", "ambient"),
    ("Durum semolina", "ambient"),
    ("Basmati rice", "ambient"),
    ("Rapeseed oil", "ambient"),
    ("Extra virgin olive oil", "ambient"),
    ("Sea salt, fine", "ambient"),
    ("Caster sugar", "ambient"),
    ("Tomato passata", "ambient"),
    ("Chickpeas, cooked", "ambient"),
    ("Hazelnuts, roasted", "ambient"),
    ("Sesame seeds", "ambient"),
    ("Dark chocolate 70%", "ambient"),
    ("Vanilla pods", "ambient"),
    ("Puff pastry sheets", "frozen"),
    ("Vegetable stock concentrate", "ambient"),
)

SUPPLIERS: tuple[str, ...] = (
    "Nordfrost Logistics GmbH",
    "Green Valley Farms Ltd",
    "Azienda Agricola San Marco",
    "Hollandse Zuivel B.V.",
    "Atlantic Seafood AS",
    "Boucherie Durand SAS",
    "Mills & Sons Flour Co.",
    "Sunripe Produce S.L.",
    "Baltic Poultry Sp. z o.o.",
    "Alpine Dairy Cooperative",
    "Golden Grain Traders",
    "Levant Pulses Import",
    "Cacao Fino Trading",
    "Orchard Fresh Ltd",
    "Oleificio Toscano S.r.l.",
    "Tiefkuehl Express KG",
)

COUNTRIES = _split(
    """
    DE NL IT ES FR PL NO IE GB DK BE AT TR GR PE
    """
)

ALLERGENS = _split(
    """
    gluten milk eggs fish crustaceans nuts sesame soya celery mustard sulphites
    """
)

LINES = _split(
    """
    L1-slicing L2-mincing L3-cooking L4-cooling L5-packing-MAP L6-packing-vacuum L7-bakery
    L8-ready-meals
    """
)

INSPECTORS: tuple[str, ...] = (
    "A. Novak",
    "B. Schmidt",
    "C. Rossi",
    "D. Dubois",
    "E. Jansen",
    "F. Kowalska",
    "G. Haugen",
    "H. Murphy",
    "I. Garcia",
    "J. Lindqvist",
    "K. Weber",
    "L. Moretti",
)

WORDS = _split(
    """
    temperature probe core reading within limits above below target line stopped restarted
    after cleaning allergen changeover verified metal detector test piece passed failed
    label checked batch code print illegible reprinted seal integrity vacuum leak MAP gas
    mix oxygen residual weight underweight overweight sample retained for micro swab pending
    lab result supervisor informed corrective action recorded see deviation report CCP blast
    chiller cooling curve slow door open pallet damaged rewrapped foreign body none found
    operator training shift handover night early late the and was no of on to minutes kg
    units tray carton film roll changed knife sharpened calibration due scale
    """
)

RECIPES: tuple[str, ...] = (
    "Chicken tikka masala",
    "Beef lasagne",
    "Salmon en croute",
    "Margherita pizza",
    "Spinach and ricotta cannelloni",
    "Chickpea curry",
    "Cottage pie",
    "Strawberry cheesecake",
    "Chocolate hazelnut tart",
    "Vegetable risotto",
    "Prawn linguine",
    "Pork and apple sausage",
)

RELEASE_NOTES: tuple[str, ...] = (
    "Released after review of CCP records.",
    "Released, label reprinted before dispatch.",
    "Released; retained samples stored in chiller 3.",
    "Released after second metal detector check.",
)

HOLD_NOTES: tuple[str, ...] = (
    "On hold pending micro results.",
    "Hold: seal integrity failure on 2 of 20 samples.",
    "Hold: cooling curve outside limits, awaiting QA manager.",
    "Hold: label allergen statement to be verified.",
)

REJECT_NOTES: tuple[str, ...] = (
    "Rejected: core temperature below 75 C at end of cook.",
    "Rejected: foreign body (plastic) found in sample.",
    "Rejected: Listeria detected in environmental swab.",
    "Rejected: underweight packs beyond tolerance.",
)


@dataclass(frozen=True)
class _Counts:
    lots: int
    runs: int
    qc: int


def plan_counts(target_bytes: int, base_bytes: int = 0) -> dict[str, int]:
    """Return the planned row counts of the main tables for a database of ``target_bytes``.

    ``base_bytes`` is the size of the database before loading (catalogs and the empty
    schema); it is subtracted from the target. At least ``MIN_LOTS`` lots are planned.
    """
    c = _plan(target_bytes, base_bytes)
    return {"lots": c.lots, "production_runs": c.runs, "qc_decisions": c.qc}


def _plan(target_bytes: int, base_bytes: int) -> _Counts:
    budget = max(0, target_bytes - base_bytes)
    lots = max(MIN_LOTS, round(budget / BYTES_PER_LOT))
    runs = lots * RUNS_PER_LOT
    qc = runs * QC_PER_TWO_RUNS // 2
    return _Counts(lots, runs, qc)


def create_schema(conn: psycopg.Connection[Any]) -> None:
    """Create the tables, indexes, triggers and the view in schema ``public``."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET LOCAL search_path = public")
        cur.execute(SCHEMA_SQL)


def _unit(key: str, salt: int) -> str:
    """SQL expression: a uniform double in [0, 1) from a hash of ``key`` and the seed."""
    return (
        f"((hashint8extended(({key})::bigint, %(seed)s::bigint * 1000 + {salt}) "
        f"& 281474976710655)::float8 / 281474976710656.0)"
    )


def _lot_time(lot_id: str) -> str:
    """SQL expression: the reception time of lot ``lot_id`` (deterministic)."""
    return (
        f"(%(epoch)s::timestamptz + ({lot_id}) * %(lot_spacing)s::interval"
        f" + {_unit(lot_id, 1)} * interval '6 hours')"
    )


def _run_lot(run_id: str) -> str:
    """SQL expression: the lot consumed by run ``run_id``, kept inside the current batch."""
    return (
        f"least(%(lot_hi)s::bigint, greatest(%(lot_lo)s::bigint, "
        f"(({run_id}) - 1) / {RUNS_PER_LOT} + 1 + floor({_unit(run_id, 2)} * 3)::bigint - 1))"
    )


def _run_start(run_id: str) -> str:
    return (
        f"({_lot_time(_run_lot(run_id))} + interval '2 hours'"
        f" + {_unit(run_id, 3)} * interval '3 days')"
    )


def _run_finish(run_id: str) -> str:
    start = _run_start(run_id)
    return f"({start} + interval '25 minutes' + {_unit(run_id, 4)} * interval '7 hours')"


def _words(n_expr: str) -> str:
    """SQL expression: ``n_expr`` random words (``n_expr`` must reference the outer row)."""
    return (
        "(SELECT string_agg((%(words)s::text[])[1 + floor(random() * %(n_words)s)::int], ' ')"
        f" FROM generate_series(1, {n_expr}))"
    )


LOTS_SQL = f"""
INSERT INTO lots (id, lot_code, product, supplier, received_at, quantity_kg, temperature_c,
                  attributes, updated_at)
SELECT s.id,
       'L' || to_char(s.received_at AT TIME ZONE 'UTC', 'YYMMDD') || '-'
           || lpad(s.id::text, 7, '0') || '-' || upper(substr(md5(s.id::text || s.r1), 1, 4)),
       (%(products)s::text[])[s.p],
       (%(suppliers)s::text[])[s.sup],
       s.received_at,
       round((5 + s.r2 * s.r2 * 2400)::numeric, 3),
       CASE (%(storage)s::text[])[s.p]
           WHEN 'frozen' THEN round((-21 + s.r3 * 4 + (s.r4 > 0.97)::int * 6)::numeric, 2)
           WHEN 'chilled' THEN round((0.5 + s.r3 * 3.5 + (s.r4 > 0.95)::int * 4)::numeric, 2)
           ELSE CASE WHEN s.r4 < 0.4 THEN NULL ELSE round((12 + s.r3 * 10)::numeric, 2) END
       END,
       jsonb_build_object(
           'origin', (%(countries)s::text[])[1 + floor(s.r5 * %(n_countries)s)::int],
           'storage', (%(storage)s::text[])[s.p],
           'allergens', (SELECT jsonb_agg(DISTINCT
                                (%(allergens)s::text[])[1 + floor(random() * %(n_allergens)s)::int])
                         FROM generate_series(0, (s.id %% 3)::int)),
           'pallets', 1 + floor(s.r2 * 12)::int,
           'best_before', to_char(s.received_at + (3 + floor(s.r6 * 360)::int) * interval '1 day',
                                  'YYYY-MM-DD'),
           'supplier_ref', upper(substr(md5(s.r6::text), 1, 10)),
           'delivery_note', 'DN-' || (100000 + floor(s.r5 * 899999)::int),
           'haccp', jsonb_build_object(
               'truck_temp_c', round((s.r3 * 8 - 2)::numeric, 1),
               'packaging_ok', s.r4 > 0.02,
               'checked_by', (%(inspectors)s::text[])[1 + floor(s.r1 * %(n_inspectors)s)::int]),
           'certificates', CASE WHEN s.r5 < 0.6
               THEN jsonb_build_array('IFS-' || substr(md5(s.sup::text || %(seed)s), 1, 8),
                                      'BRCGS-' || (1000 + s.sup * 37))
               ELSE '[]'::jsonb END
       ),
       s.received_at + s.r6 * interval '2 days'
FROM (
    SELECT g AS id,
           1 + floor(random() * %(n_products)s)::int AS p,
           1 + floor(random() * %(n_suppliers)s)::int AS sup,
           random() AS r1, random() AS r2, random() AS r3,
           random() AS r4, random() AS r5, random() AS r6,
           {_lot_time("g")} AS received_at
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g
    OFFSET 0
) AS s
"""

RUNS_SQL = f"""
INSERT INTO production_runs (id, lot_id, line, started_at, finished_at, output_units, recipe,
                             notes, updated_at)
SELECT s.id,
       s.lot_id,
       (%(lines)s::text[])[1 + floor(s.r1 * %(n_lines)s)::int],
       s.started_at,
       s.finished_at,
       floor(s.r2 * s.r2 * 12000)::int,
       jsonb_build_object(
           'recipe', (%(recipes)s::text[])[1 + floor(s.r3 * %(n_recipes)s)::int],
           'version', 1 + floor(s.r4 * 9)::int,
           'batch_size_kg', round((50 + s.r5 * 950)::numeric, 1),
           'ingredients', (SELECT jsonb_agg(jsonb_build_object(
                               'item',
                               (%(products)s::text[])[1 + floor(random() * %(n_products)s)::int],
                               'kg', round((random() * 120)::numeric, 2)))
                           FROM generate_series(0, (2 + s.id %% 5)::int)),
           'ccp', jsonb_build_object(
               'cook_core_c', round((72 + s.r6 * 14)::numeric, 1),
               'cool_to_5c_min', 30 + floor(s.r5 * 150)::int,
               'metal_detector', CASE WHEN s.r1 > 0.01 THEN 'pass' ELSE 'fail' END),
           'operator_id', 'OP-' || lpad((1 + floor(s.r4 * 480))::int::text, 4, '0')
       ),
       CASE WHEN s.r6 < 0.55 THEN {_words("(4 + s.id %% 23)::int")} END,
       s.finished_at
FROM (
    SELECT g AS id,
           {_run_lot("g")} AS lot_id,
           {_run_start("g")} AS started_at,
           {_run_finish("g")} AS finished_at,
           random() AS r1, random() AS r2, random() AS r3,
           random() AS r4, random() AS r5, random() AS r6
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g
    OFFSET 0
) AS s
"""

QC_SQL = f"""
INSERT INTO qc_decisions (id, run_id, inspector, decision, decided_at, measurements, photo,
                          comment, updated_at)
SELECT s.id,
       s.run_id,
       (%(inspectors)s::text[])[1 + floor(s.r1 * %(n_inspectors)s)::int],
       s.decision,
       s.decided_at,
       jsonb_strip_nulls(jsonb_build_object(
           'core_temp_c', round((68 + s.r2 * 20)::numeric, 1),
           'ph', round((3.8 + s.r3 * 3)::numeric, 2),
           'aw', round((0.85 + s.r4 * 0.14)::numeric, 3),
           'net_weight_g', jsonb_build_array(
               round((398 + s.r5 * 9)::numeric, 1), round((398 + s.r6 * 9)::numeric, 1),
               round((398 + s.r2 * 9)::numeric, 1), round((398 + s.r3 * 9)::numeric, 1)),
           'seal_ok', s.r4 > 0.03,
           'label_ok', s.r5 > 0.02,
           'sample_id', 'S' || s.id || '-' || substr(md5(s.id::text || s.r1), 1, 6),
           'micro', CASE WHEN s.r6 < 0.3 THEN jsonb_build_object(
                            'tvc_cfu_g', floor(10 ^ (2 + s.r2 * 4))::int,
                            'listeria', CASE WHEN s.r3 < 0.995 THEN 'not detected'
                                             ELSE 'detected' END,
                            'lab_ref', 'LAB-' || upper(substr(md5(s.r6::text), 1, 8)))
                        ELSE NULL END
       )),
       CASE WHEN s.r7 < 0.9 THEN
           '\\xffd8ffe000104a464946'::bytea
           || convert_to(format('CAM-%%s|%%s|%%s|%%s;', 1 + s.id %% 24, s.decided_at,
                                s.run_id, s.decision), 'UTF8')
           || (SELECT string_agg(sha512(int8send(s.id * 64 + k) || %(seed_bytes)s::bytea),
                                 ''::bytea)
               FROM generate_series(1, (2 + floor(s.r7 * s.r7 * 40))::int) AS k)
           || decode(repeat(lpad(to_hex(floor(s.r8 * 256)::int), 2, '0')
                            || lpad(to_hex(floor(s.r2 * 256)::int), 2, '0'),
                            (64 + floor(s.r8 * 900))::int), 'hex')
       END,
       CASE WHEN s.r8 < 0.35 THEN {_words("(3 + s.id %% 13)::int")}
            WHEN s.r8 < 0.5 OR s.decision <> 'release' THEN (CASE s.decision
                WHEN 'release' THEN %(release_notes)s::text[]
                WHEN 'hold' THEN %(hold_notes)s::text[]
                ELSE %(reject_notes)s::text[] END)[1 + floor(s.r3 * %(n_notes)s)::int]
       END,
       s.decided_at
FROM (
    SELECT t.*,
           CASE WHEN t.r1 < 0.86 THEN 'release' WHEN t.r1 < 0.96 THEN 'hold'
                ELSE 'reject' END AS decision
    FROM (
        SELECT g AS id,
               (g - 1) * 2 / {QC_PER_TWO_RUNS} + 1 AS run_id,
               {_run_finish(f"((g - 1) * 2 / {QC_PER_TWO_RUNS} + 1)")}
                   + interval '10 minutes' + {_unit("g", 5)} * interval '20 hours' AS decided_at,
               random() AS r1, random() AS r2, random() AS r3, random() AS r4,
               random() AS r5, random() AS r6, random() AS r7, random() AS r8
        FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g
        OFFSET 0
    ) AS t
) AS s
"""

# Some held decisions are released later; the audit trigger records the change.
RELEASE_HOLDS_SQL = f"""
UPDATE qc_decisions
SET decision = 'release',
    updated_at = decided_at + interval '2 days' + {_unit("id", 6)} * interval '3 days'
WHERE id BETWEEN %(lo)s::bigint AND %(hi)s::bigint
  AND decision = 'hold'
  AND {_unit("id", 7)} < 0.6
"""


def _setseed(cur: psycopg.Cursor[Any], seed: int, batch: int, table: int) -> None:
    # setseed() takes a double in [-1, 1]; map (seed, batch, table) onto it deterministically.
    mixed = (seed * 1_000_003 + batch * 7_919 + table * 104_729) % 2_000_001
    cur.execute("SELECT setseed(%s::float8)", (mixed / 1_000_000.0 - 1.0,))


def load(conn: psycopg.Connection[Any], target_bytes: int, seed: int = 42) -> dict[str, int]:
    """Fill the schema created by :func:`create_schema` with about ``target_bytes`` of data.

    ``target_bytes`` is the approximate ``pg_database_size`` to reach; for targets below the
    size of an empty database a minimal dataset (a few hundred rows) is loaded. An open
    transaction on ``conn`` is committed first; then rows are inserted in batches, each
    committed on its own, and the tables are analyzed. The same ``seed`` and target give
    the same data. Returns the row count of every table.
    """
    if target_bytes < 0:
        raise ValueError("target_bytes must not be negative")
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.commit()
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT EXISTS (SELECT FROM public.lots)")
        row = cur.fetchone()
        empty = not (row and row[0])
        cur.execute("SELECT pg_database_size(current_database())")
        row = cur.fetchone()
        base = int(row[0]) if row else 0
    if not empty:
        raise ValueError("load() needs the empty tables made by create_schema()")
    counts = _plan(target_bytes, base)

    params: dict[str, Any] = {
        "seed": seed,
        "seed_bytes": seed.to_bytes(8, "big", signed=True),
        "epoch": "2023-01-02 05:00:00+00",
        # Spread the lots over roughly two years whatever their number.
        "lot_spacing": f"{max(1, 2 * 365 * 24 * 3600 // counts.lots)} seconds",
        "products": [p for p, _ in PRODUCTS],
        "storage": [s for _, s in PRODUCTS],
        "n_products": len(PRODUCTS),
        "suppliers": list(SUPPLIERS),
        "n_suppliers": len(SUPPLIERS),
        "countries": list(COUNTRIES),
        "n_countries": len(COUNTRIES),
        "allergens": list(ALLERGENS),
        "n_allergens": len(ALLERGENS),
        "inspectors": list(INSPECTORS),
        "n_inspectors": len(INSPECTORS),
        "lines": list(LINES),
        "n_lines": len(LINES),
        "recipes": list(RECIPES),
        "n_recipes": len(RECIPES),
        "words": list(WORDS),
        "n_words": len(WORDS),
        "release_notes": list(RELEASE_NOTES),
        "hold_notes": list(HOLD_NOTES),
        "reject_notes": list(REJECT_NOTES),
        "n_notes": len(RELEASE_NOTES),
    }

    batches = math.ceil(counts.lots / LOTS_PER_BATCH)
    for b in range(batches):
        lot_lo = b * LOTS_PER_BATCH + 1
        lot_hi = min(counts.lots, (b + 1) * LOTS_PER_BATCH)
        run_lo = (lot_lo - 1) * RUNS_PER_LOT + 1
        run_hi = lot_hi * RUNS_PER_LOT
        # Decisions whose run lies in this batch: run_id = (g - 1) * 2 / 3 + 1.
        qc_lo = (run_lo - 1) * QC_PER_TWO_RUNS // 2 + 1
        qc_hi = run_hi * QC_PER_TWO_RUNS // 2
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SET LOCAL search_path = public")
            _setseed(cur, seed, b, 1)
            cur.execute(LOTS_SQL, {**params, "lo": lot_lo, "hi": lot_hi})
            _setseed(cur, seed, b, 2)
            cur.execute(
                RUNS_SQL,
                {**params, "lo": run_lo, "hi": run_hi, "lot_lo": lot_lo, "lot_hi": lot_hi},
            )
            _setseed(cur, seed, b, 3)
            cur.execute(
                QC_SQL,
                {**params, "lo": qc_lo, "hi": qc_hi, "lot_lo": lot_lo, "lot_hi": lot_hi},
            )
            cur.execute(RELEASE_HOLDS_SQL, {"seed": seed, "lo": qc_lo, "hi": qc_hi})

    result: dict[str, int] = {}
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET LOCAL search_path = public")
        for table in ("lots", "production_runs", "qc_decisions"):
            # Rows were inserted with explicit ids: move the sequences past them.
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
            )
        cur.execute("ANALYZE lots, production_runs, qc_decisions, qc_decision_audit")
        for table in TABLES:
            cur.execute(f"SELECT count(*) FROM {table}")
            row = cur.fetchone()
            result[table] = int(row[0]) if row else 0
    return result
