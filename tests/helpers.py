"""Small hand-made shops for tests: Segment calls and catalog rows, written as a landing zone."""

from __future__ import annotations

import csv
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

_ids = itertools.count(1)

CATALOG_HEADER = ["id", "title", "description", "link", "image_link", "price", "sale_price", "availability",
                  "brand", "product_type", "quantity"]


def at(text: str) -> datetime:
    """'2026-11-20 10:05' → aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def identify(user: str, when: str, message_id: str | None = None, **traits) -> dict:
    return {"type": "identify", "userId": user, "timestamp": iso(at(when)),
            "messageId": message_id or f"id-{next(_ids)}", "traits": traits}


def track(user: str, event: str, when: str, message_id: str | None = None, **properties) -> dict:
    return {"type": "track", "userId": user, "event": event, "timestamp": iso(at(when)),
            "messageId": message_id or f"tr-{next(_ids)}", "properties": properties}


def order(user: str, order_id: str, when: str, *items: tuple[str, int, float], **extra) -> dict:
    products = [{"product_id": p, "quantity": q, "price": price} for p, q, price in items]
    revenue = sum(q * price for _, q, price in items)
    return track(user, "Order Completed", when, order_id=order_id, revenue=revenue, currency="EUR",
                 products=products, **extra)


def customer(user: str, when: str = "2026-11-01 09:00", opt_in: bool | None = True, **traits) -> dict:
    base = {"email": f"{user}@example.com", "first_name": user.capitalize(), "locale": "fr",
            "timezone": "Europe/Paris"}
    if opt_in is not None:
        base["email_opt_in"] = opt_in
    base.update(traits)
    return identify(user, when, **base)


def write_events(landing: Path, hour: str, calls: list, name: str = "events-0000.jsonl",
                 raw_lines: list[str] = ()) -> Path:
    """Write calls into the folder of ``hour`` ('2026-11-20 10')."""
    moment = datetime.strptime(hour, "%Y-%m-%d %H")
    folder = landing / f"events/dt={moment:%Y-%m-%d}/hour={moment:%H}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with path.open("w") as out:
        for call in calls:
            out.write(json.dumps(call) + "\n")
        for line in raw_lines:
            out.write(line + "\n")
    return path


def product(pid: str, title: str | None = None, price: str = "19.90 EUR", availability: str = "in_stock",
            quantity: int | str = 20, product_type: str = "Animalerie > Chien", sale_price: str = "") -> dict:
    return {"id": pid, "title": title or f"Produit {pid}", "description": "", "link": f"https://shop.example/p/{pid}",
            "image_link": f"https://shop.example/img/{pid}.jpg", "price": price, "sale_price": sale_price,
            "availability": availability, "brand": "Marque", "product_type": product_type, "quantity": quantity}


def write_catalog(landing: Path, day: str, products: list[dict]) -> Path:
    folder = landing / f"catalog/dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "products.csv"
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=CATALOG_HEADER)
        writer.writeheader()
        writer.writerows(products)
    return path


def dump_tables(wh, tables) -> dict:
    """Every row of some tables, sorted: to compare a warehouse before and after a re-run."""
    out = {}
    for table in tables:
        rows = wh.query(f"SELECT * FROM {table}")
        out[table] = sorted(tuple(sorted((k, str(v)) for k, v in r.items())) for r in rows)
    return out


def outbox(wh, campaign_id: str | None = None) -> list[dict]:
    """message_log rows (customer, step, status, reason, due_at as 'YYYY-MM-DD HH:MM'), sorted."""
    sql = "SELECT customer_id, campaign_id, step, status, reason, due_at, trigger_id FROM message_log"
    rows = wh.query(sql + (" WHERE campaign_id = :c" if campaign_id else ""), {"c": campaign_id})
    for row in rows:
        row["due_at"] = str(row["due_at"])[:16]
    return sorted(rows, key=lambda r: (r["customer_id"], r["campaign_id"], r["step"], r["due_at"]))


def recipients(ses) -> list[str]:
    """Sorted recipient (first destination) of every message the SES emulator accepted."""
    return sorted(m["destinations"][0] for m in ses.sent_messages())


def only(campaigns: dict, *ids: str) -> dict:
    """The campaigns of some ids (a dispatcher run that knows only those)."""
    return {cid: campaigns[cid] for cid in ids}


# -- the Airflow tasks' calls, as plain functions ----------------------------------------------
# What the planner and dispatcher tasks of dags/campaigns.py and dags/dispatch_messages.py call,
# with the arguments they pass, so scenario tests exercise the same code without a DAG run each.
# tests/test_scenarios_airflow.py and tests/test_integration_airflow.py prove Airflow makes
# exactly these calls (as-of, run ids, mapped sends, the report's verdict).

def manual_run_id() -> str:
    """A run id shaped like Airflow's for a manual or ``dag.test`` run (unique per call)."""
    return f"manual__{datetime.now(UTC).isoformat()}"


def run_window(schedule: str, run_after: datetime) -> tuple[datetime, datetime]:
    """The data interval of a manual / ``dag.test`` run at ``run_after`` of a DAG on ``schedule``:
    the last whole interval (relance.airflow_support.interval_timetable); its end is the as-of."""
    if schedule == "@hourly":
        end = run_after.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return end - timedelta(hours=1), end
    import pendulum

    from relance.airflow_support import interval_timetable

    interval = interval_timetable(schedule).infer_manual_data_interval(run_after=pendulum.instance(run_after))
    return (datetime.fromtimestamp(interval.start.timestamp(), tz=UTC),
            datetime.fromtimestamp(interval.end.timestamp(), tz=UTC))


def run_end(schedule: str, run_after: datetime) -> datetime:
    return run_window(schedule, run_after)[1]


def plan_at(wh, campaign, moment: datetime, run_id: str | None = None, dry_run: bool = False) -> dict:
    """The ``plan`` task of ``campaign__<id>`` run at ``moment``: the first real run ever records
    when Relance went live (its interval start), then the campaign is planned as of the interval end."""
    from relance.campaigns.planner import mark_live_since, plan_campaign

    start, end = run_window(campaign.schedule, moment)
    if not dry_run:
        mark_live_since(wh, start)
    return plan_campaign(wh, campaign, end, run_id=run_id or manual_run_id(), dry_run=dry_run)


def dispatch_at(wh, campaigns: dict, as_of: datetime, run_id: str | None = None, dry_run: bool = False,
                now: datetime | None = None, fail_on_problems: bool = False) -> dict:
    """A ``dispatch_messages`` run as of ``as_of``: ``prepare`` (with the wall clock, pinned by
    ``RELANCE_SIMULATED_NOW`` in simulations, unless ``now`` is given), ``send_batch`` for each
    batch id it returns (a fresh SES v2 sender paced like the task's), then ``report``: the
    summary and the problems for which the report task fails the run (a campaign failed closed on
    a template error, marketing held by the deliverability guard or failing for want of an
    unsubscribe secret) — with ``fail_on_problems``, an AssertionError as the red run.

    Returns ``{"run_id", "batches", "sends" (one count dict per batch), "summary", "problems"}``.
    """
    from relance import aws, settings
    from relance.dispatch import prepare, send_batch, summary
    from relance.dispatch.report import run_problems
    from relance.messaging.ratelimit import shared_pacer
    from relance.messaging.ses import SesSender

    run_id = run_id or manual_run_id()
    now = now or settings.wall_clock()
    batches = prepare(wh, campaigns, as_of, now, run_id=run_id, dry_run=dry_run)
    sends = []
    for batch_id in batches:
        client = aws.client("sesv2", retries=0)
        with shared_pacer(wh, client) as pacer:
            sends.append(send_batch(wh, batch_id, campaigns, SesSender(client, pacer), as_of))
    problems = run_problems(wh, as_of, batches)
    if fail_on_problems:
        assert not problems, f"the dispatcher's report would fail the run: {problems}"
    return {"run_id": run_id, "batches": batches, "sends": sends, "summary": summary(wh, as_of, batches),
            "problems": problems}
