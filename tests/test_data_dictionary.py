"""The schema says what it means, and only once.

* ``docs/data_dictionary.md`` documents every table and column of a freshly migrated
  warehouse, and nothing that does not exist (on both backends);
* the ``message_statuses`` vocabulary (migration 0008) holds every status the code writes,
  and no ``message_log`` row carries another;
* an applied migration that was edited afterwards stops the upgrade, naming the file.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from relance import settings
from relance.warehouse import Warehouse
from relance.warehouse import migrations as migrations_module

DICTIONARY = settings.REPO_ROOT / "docs" / "data_dictionary.md"
VOCABULARY_MIGRATION = settings.SQL_DIR / "schema" / "0008_vocabulary.sql"
ROW = {"send_key": "k1", "campaign_id": "c", "campaign_version": "v", "step": 1, "step_name": "s",
       "variant": "a", "customer_id": "u", "category": "marketing", "priority": 1, "trigger_id": "t",
       "trigger_at": datetime(2026, 11, 20, 10, tzinfo=UTC), "due_at": datetime(2026, 11, 20, 10, tzinfo=UTC),
       "context": "{}", "planned_at": datetime(2026, 11, 20, 10, tzinfo=UTC), "planned_by": "test"}
#: orders.status and order_status_changes.status (CHECK in migration 0016), the other status
#: columns the SQL files compare with literals
ORDER_STATUSES = {"completed", "refunded", "cancelled", "shipped", "delivered"}
#: bookkeeping of the migration runner itself, not warehouse data
INTERNAL_TABLES = {"schema_migrations", "schema_views"}


IDENT = r"[a-z_][a-z_0-9]*"


#: Gaps found when this test was written (issue 11), in sections other owners are writing;
#: the list may only shrink: the test fails on any new gap, and on a gap fixed but still listed.
PENDING: frozenset[str] = frozenset()


def documented() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """What the dictionary documents, read as a newcomer reads it.

    Returns (table → every identifier in backticks in its part of the text, table → the
    columns of its ``| `column` | meaning |`` table, if it has one). A ``###`` heading names
    the tables of its section; inside a section a line starting with `` `name`: `` or
    ``- `name`:`` starts the part about that table (``orders``, the product tables, the
    views). "Same columns as `x`" / "same columns as the views `x` and `y`" inherit the
    named tables' columns (in heading order); "Same columns plus" those of the section before.
    """
    mentioned: dict[str, set[str]] = {}
    tabular: dict[str, set[str]] = {}
    inherits: dict[str, str] = {}
    heading: list[str] = []
    current: list[str] = []
    previous: list[str] = []
    for line in DICTIONARY.read_text().splitlines():
        if line.startswith("#"):
            previous = heading or previous
            title = re.sub(r"\([^)]*\)", "", line.split(" — ")[0])
            heading = re.findall(rf"`({IDENT})`", title) if line.startswith("###") else []
            current = list(heading)
            for table in heading:
                mentioned.setdefault(table, set())
            continue
        marker = re.match(rf"^(?:- )?`({IDENT})`:", line)
        if marker and (len(heading) != 1 or marker.group(1) in heading):
            current = [marker.group(1)]
            mentioned.setdefault(current[0], set())
            line = line[marker.end():]
        same = re.search(rf"[Ss]ame columns as (?:the views? )?`({IDENT})`(?: and `({IDENT})`)?", line)
        if same:
            for table, source in zip(current, [g for g in same.groups() if g], strict=False):
                inherits[table] = source
        elif re.search(r"[Ss]ame columns plus", line) and previous:
            for table in current:
                inherits[table] = previous[0]
        row = re.match(r"^\|\s*((?:`[a-z_0-9]+`(?:,\s*)?)+)\s*\|", line)
        for table in current:
            mentioned[table] |= set(re.findall(r"`(\*?[a-z_0-9]+)`", line))
            if row:
                tabular.setdefault(table, set()).update(re.findall(rf"`({IDENT})`", row.group(1)))
    for table, source in inherits.items():
        mentioned[table] |= mentioned.get(source, set())
    return mentioned, tabular


def is_documented(column: str, mentioned: set[str]) -> bool:
    """Named, or named by a shorthand: `*_converted` (any prefix), `x` with `_low` / `_high`."""
    if column in mentioned:
        return True
    if any(m.startswith("*") and column.endswith(m[1:]) for m in mentioned):
        return True
    return any(m.startswith("_") and column.endswith(m) and column[: -len(m)] in mentioned for m in mentioned)


def live(wh: Warehouse) -> dict[str, set[str]]:
    inspector = sa.inspect(wh.engine)
    names = set(inspector.get_table_names()) | set(inspector.get_view_names())
    return {name: {c["name"] for c in inspector.get_columns(name)} for name in names - INTERNAL_TABLES}


def test_the_data_dictionary_matches_the_live_schema(wh):
    (docs, tabular), schema = documented(), live(wh)
    problems = [f"table {t} is not documented" for t in sorted(schema.keys() - docs.keys())]
    problems += [f"{t} is documented but does not exist" for t in sorted(docs.keys() - schema.keys())]
    for table in sorted(schema.keys() & docs.keys()):
        problems += [f"{table}.{c} is not documented" for c in sorted(schema[table])
                     if not is_documented(c, docs[table])]
        extra = tabular.get(table, set()) - schema[table]
        problems += [f"{table}.{c} is documented but does not exist" for c in sorted(extra)]
    new = sorted(set(problems) - PENDING)
    assert not new, "docs/data_dictionary.md drifted from the schema:\n" + "\n".join(new)
    fixed = sorted(PENDING - set(problems))
    assert not fixed, "documented now, remove from PENDING in this file:\n" + "\n".join(fixed)


def test_every_status_the_code_writes_is_in_the_vocabulary(wh):
    from relance.dispatch.policy import DECIDED_STATUSES

    vocabulary = {r["status"] for r in wh.query("SELECT status FROM message_statuses")}
    written = set(DECIDED_STATUSES) | {"planned", "queued", "sending", "dry_run"}
    sql_literals = set()
    for path in (settings.SQL_DIR).rglob("*.sql"):
        if path.parent.name == "schema":
            continue
        text = path.read_text()
        sql_literals |= set(re.findall(r"status\s*=\s*'([a-z_]+)'", text))
        for listed in re.findall(r"status\s+(?:NOT\s+)?IN\s*\(\s*('[^)]*)\)", text):
            sql_literals |= set(re.findall(r"'([a-z_]+)'", listed))
    unknown = (written | sql_literals) - vocabulary - ORDER_STATUSES
    assert not unknown, f"statuses outside message_statuses: {sorted(unknown)}"
    assert wh.scalar("SELECT COUNT(*) FROM message_statuses WHERE is_final = TRUE AND is_waiting = TRUE") == 0
    waiting = {r["status"] for r in wh.query("SELECT status FROM message_statuses WHERE is_waiting = TRUE")}
    assert waiting == {"planned", "deferred_quiet_hours"}
    flags = {flag: {r["status"] for r in wh.query(f"SELECT status FROM message_statuses WHERE {flag} = TRUE")}
             for flag in ("is_waiting", "is_claimed", "is_final", "counts_against_caps")}
    for path in sorted((settings.SQL_DIR / "outbox").glob("*.sql")):
        for listed in re.findall(r"status\s+(?:NOT\s+)?IN\s*\(\s*('[^)]*)\)", path.read_text()):
            statuses = set(re.findall(r"'([a-z_]+)'", listed))
            assert statuses in flags.values(), f"{path.name}: {sorted(statuses)} is no flag of message_statuses"
    # the CHECK as the newest migration that (re)builds it says (0008, then 0020 with 'digested')
    rebuilds = [p for p in sorted((settings.SQL_DIR / "schema").glob("*.sql"))
                if "message_log_status_known CHECK" in p.read_text()]
    check = re.search(r"message_log_status_known CHECK \(status IN \(([^)]*)\)\)", rebuilds[-1].read_text()).group(1)
    assert set(re.findall(r"'([a-z_]+)'", check)) == vocabulary


def test_the_vocabulary_migration_keeps_the_rows_and_the_views_of_a_live_outbox(warehouse_url, tmp_path,
                                                                                monkeypatch):
    schema = tmp_path / "schema"
    schema.mkdir()
    for path in sorted((settings.SQL_DIR / "schema").glob("*.sql")):
        if path.name < VOCABULARY_MIGRATION.name:
            shutil.copy(path, schema)
    monkeypatch.setattr(migrations_module, "MIGRATIONS_DIR", schema)
    wh = Warehouse(warehouse_url)
    wh.upgrade()
    with wh.begin() as conn:
        wh.insert_rows("message_log", [{**ROW, "status": "sent", "send_after": datetime(2026, 11, 20, 10, tzinfo=UTC)}], conn)
    shutil.copy(VOCABULARY_MIGRATION, schema)
    assert wh.upgrade() == [VOCABULARY_MIGRATION.stem]
    assert wh.query("SELECT send_key, status, send_after FROM message_log")[0]["status"] == "sent"
    assert wh.scalar("SELECT SUM(sent) FROM campaign_daily") == 1
    with pytest.raises(sa.exc.IntegrityError):
        wh.execute("UPDATE message_log SET status = 'bounced'")
    wh.engine.dispose()


def test_a_message_log_status_outside_the_vocabulary_is_refused(wh):
    row = ROW
    with wh.begin() as conn:
        wh.insert_rows("message_log", [{**row, "status": "planned"}], conn)
    with pytest.raises(sa.exc.IntegrityError):
        with wh.begin() as conn:
            wh.insert_rows("message_log", [{**row, "send_key": "k2", "status": "sendt"}], conn)
    with pytest.raises(sa.exc.IntegrityError):
        wh.execute("UPDATE message_log SET status = 'Sent' WHERE send_key = 'k1'")
    assert wh.scalar("SELECT status FROM message_log WHERE send_key = 'k1'") == "planned"


def test_an_edited_applied_migration_stops_the_upgrade(warehouse_url, tmp_path, monkeypatch):
    schema = tmp_path / "schema"
    shutil.copytree(settings.SQL_DIR / "schema", schema)
    monkeypatch.setattr(migrations_module, "MIGRATIONS_DIR", schema)
    wh = Warehouse(warehouse_url)
    assert wh.upgrade()
    edited = schema / "0002_rules.sql"
    edited.write_text(edited.read_text() + "\nCREATE TABLE sneaked_in (x INTEGER);\n")
    with pytest.raises(migrations_module.MigrationChanged, match=r"0002_rules\.sql was edited after it was applied"):
        wh.upgrade()
    with pytest.raises(migrations_module.MigrationChanged, match="new migration"):
        Warehouse(warehouse_url).upgrade()
    assert "sneaked_in" not in sa.inspect(wh.engine).get_table_names()
    wh.engine.dispose()


def test_the_dictionary_parser_reads_sections_and_column_rows():
    assert Path(DICTIONARY).exists()
    docs, tabular = documented()
    assert {"send_key", "status", "provider_message_id"} <= tabular["message_log"]
    assert {"order_id", "revenue"} <= docs["orders"] and "order_id" not in tabular.get("orders", set())
    assert {"product_id", "line_no"} <= docs["order_items"] and "revenue" not in docs["order_items"]
    assert {"snapshot_date", "sale_price"} <= docs["products"]  # "Same columns plus"
    assert {"complement_id", "similar_id", "upsell_id"}.isdisjoint(docs["ml_holdout_baskets"])
