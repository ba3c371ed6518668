"""What recipients do with the messages, simulated (demo and tests only — never on the
production path): the sends of a warehouse become SES notifications on an SQS queue (the
emulator's) and some clicks become orders in the landing zone, with **planted** rates per
campaign and variant, so ``ingest_ses_events`` and ``campaign_report`` can be checked against a
known truth.

For each ``sent`` row, drawn deterministically from (seed, send_key):

* a ``Send`` event; then ``Bounce`` with probability ``1 - delivery`` (``Permanent`` for a
  ``hard_bounce`` share, else ``Transient``) and nothing more, else ``Delivery``;
* once delivered: ``Complaint`` with probability ``complaint``; ``Open`` with probability
  ``open`` and ``Click`` with probability ``click`` (a click is always opened: ``click <= open``),
  within 6 hours of the send;
* after a click, an ``Order Completed`` 30 minutes later with probability ``order_after_click``;
* independently, an organic order 3 days after the decision with probability ``organic`` —
  the same for ``holdout`` rows, which get nothing else.

Bodies alternate between raw SES events and SNS envelopes (event-publishing format, with the
``send_key`` and ``campaign_id`` tags). What the report should then find, in expectation, is
given by :meth:`Plan.expected_conversion` (A/B: messages credited with an order / sent) and
:meth:`Plan.expected_customer_conversion` (holdout comparison: any order within the window).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from relance.timeutil import utc
from relance.warehouse import Warehouse

ORGANIC_DELAY = timedelta(days=3)  # beyond the 1-day open window, inside the 5-day click window


@dataclass(frozen=True)
class Rates:
    delivery: float = 0.97
    hard_bounce: float = 0.5          # share of bounces that are permanent
    complaint: float = 0.002          # of delivered
    open: float = 0.40                # of delivered
    click: float = 0.08               # of delivered (<= open)
    order_after_click: float = 0.30

    def __post_init__(self):
        if not 0 <= self.click <= self.open <= 1:
            raise ValueError(f"need 0 <= click <= open <= 1, got click={self.click}, open={self.open}")


@dataclass
class Plan:
    """Planted behaviour: rates per (campaign, variant), per campaign, or the default; the
    probability of an organic order (with or without a message) per campaign."""

    default: Rates = field(default_factory=Rates)
    campaigns: dict[str, Rates] = field(default_factory=dict)
    variants: dict[tuple[str, str], Rates] = field(default_factory=dict)
    organic: float = 0.05
    organic_by_campaign: dict[str, float] = field(default_factory=dict)

    def rates(self, campaign_id: str, variant: str) -> Rates:
        return self.variants.get((campaign_id, variant)) or self.campaigns.get(campaign_id) or self.default

    def organic_rate(self, campaign_id: str) -> float:
        return self.organic_by_campaign.get(campaign_id, self.organic)

    def click_order_rate(self, campaign_id: str, variant: str) -> float:
        r = self.rates(campaign_id, variant)
        return r.delivery * r.click * r.order_after_click

    def expected_conversion(self, campaign_id: str, variant: str, category: str = "marketing") -> float:
        """A/B conversion rate the report should find: a click followed by an order, or by the
        organic order (3 days later: inside the click window, outside the open window)."""
        if category != "marketing":
            return 0.0
        r, p = self.rates(campaign_id, variant), self.organic_rate(campaign_id)
        return r.delivery * r.click * (r.order_after_click + (1 - r.order_after_click) * p)

    def expected_customer_conversion(self, campaign_id: str, variant: str | None) -> float:
        """Probability a customer orders within the window: ``variant`` None = held out."""
        p = self.organic_rate(campaign_id)
        if variant is None:
            return p
        return 1 - (1 - self.click_order_rate(campaign_id, variant)) * (1 - p)


@dataclass
class Truth:
    """What was planted, to compare the warehouse with."""

    events: int = 0
    bodies: list[str] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    hard_bounced: set[str] = field(default_factory=set)
    complained: set[str] = field(default_factory=set)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _ses_event(event_type: str, row: dict[str, Any], sent_at: datetime, when: datetime,
               body: dict[str, Any]) -> dict[str, Any]:
    key = {"Send": "send", "Delivery": "delivery", "Bounce": "bounce", "Complaint": "complaint",
           "Open": "open", "Click": "click"}[event_type]
    mail = {"timestamp": _stamp(sent_at), "source": "boutique@shop.example", "messageId": row["provider_message_id"],
            "destination": [row["email"]], "headersTruncated": False,
            "tags": {"send_key": [row["send_key"]], "campaign_id": [row["campaign_id"]],
                     "ses:configuration-set": ["relance"]}}
    if event_type != "Send":
        body = {**body, "timestamp": _stamp(when)}
    return {"eventType": event_type, "mail": mail, key: body}


def _wrap(event: dict[str, Any], n: int) -> str:
    if n % 2:
        return json.dumps(event)
    return json.dumps({"Type": "Notification", "MessageId": f"sim-{n:08d}",
                       "TopicArn": "arn:aws:sns:eu-west-1:000000000000:relance-ses-events",
                       "Message": json.dumps(event), "Timestamp": event.get("mail", {}).get("timestamp")})


def _order(customer_id: str, when: datetime, order_id: str, rng: random.Random,
           products: list[tuple[str, float]]) -> dict[str, Any]:
    product_id, price = products[rng.randrange(len(products))]
    quantity = 1 + (rng.random() < 0.3)
    return {"type": "track", "event": "Order Completed", "userId": customer_id, "messageId": f"sim-{order_id}",
            "timestamp": _stamp(when), "properties": {
                "order_id": order_id, "revenue": round(price * quantity, 2), "currency": "EUR",
                "products": [{"product_id": product_id, "quantity": quantity, "price": price}]}}


def simulate(wh: Warehouse, sqs: Any, queue_url: str, landing: str | Path, since: datetime, until: datetime,
             plan: Plan, seed: int = 7, products: list[tuple[str, float]] | None = None,
             send_events: bool = True) -> Truth:
    """Engagement for the sends and holdout decisions of [since, until): SES notifications on
    the queue, orders as Segment calls in ``<landing>/events/dt=…/hour=…/engagement-*.jsonl``.

    Call it once per simulated interval (as the demo runs its DAGs hour by hour), so the queue
    stays short: the emulator's SQS slows down with thousands of messages waiting.
    ``send_events=False`` leaves out the ``Send`` events (only reconciliation uses them)."""
    since, until = utc(since), utc(until)
    products = products or [(r["product_id"], float(r["price"])) for r in wh.query(
        "SELECT product_id, price FROM products WHERE price > 0 ORDER BY product_id")] or [("sim-gift-box", 39.9)]
    truth = Truth()
    bodies: list[str] = []
    for row in wh.query("feedback/engagement_sends", {"since": since, "until": until}):
        rng = random.Random(f"{seed}:{row['send_key']}")
        decided = utc(row["decided_at"])
        if rng.random() < plan.organic_rate(row["campaign_id"]) and row["category"] == "marketing":
            when = decided + ORGANIC_DELAY + timedelta(minutes=rng.randrange(0, 240))
            truth.orders.append(_order(row["customer_id"], when, f"org-{row['send_key']}", rng, products))
        if row["status"] != "sent" or not row["provider_message_id"] or not row["email"]:
            continue
        rates = plan.rates(row["campaign_id"], row["variant"])
        sent = utc(row["sent_at"] or decided)
        events = [_ses_event("Send", row, sent, sent, {})] if send_events else []
        if rng.random() >= rates.delivery:
            permanent = rng.random() < rates.hard_bounce
            events.append(_ses_event("Bounce", row, sent, sent + timedelta(seconds=5), {
                "bounceType": "Permanent" if permanent else "Transient",
                "bounceSubType": "General" if permanent else "MailboxFull",
                "bouncedRecipients": [{"emailAddress": row["email"], "action": "failed",
                                       "status": "5.1.1" if permanent else "4.2.2"}],
                "feedbackId": f"sim-fb-{row['send_key']}"}))
            if permanent:
                truth.hard_bounced.add(row["email"].lower())
        else:
            events.append(_ses_event("Delivery", row, sent, sent + timedelta(seconds=3), {
                "recipients": [row["email"]], "smtpResponse": "250 2.0.0 OK", "processingTimeMillis": 3000}))
            if rng.random() < rates.complaint:
                events.append(_ses_event("Complaint", row, sent, sent + timedelta(hours=2), {
                    "complainedRecipients": [{"emailAddress": row["email"]}], "complaintFeedbackType": "abuse",
                    "feedbackId": f"sim-cf-{row['send_key']}"}))
                truth.complained.add(row["email"].lower())
            u = rng.random()
            if u < rates.open:
                opened = sent + timedelta(minutes=rng.randrange(10, 360))
                events.append(_ses_event("Open", row, sent, opened, {"ipAddress": "198.51.100.7"}))
                if u < rates.click:
                    clicked = opened + timedelta(minutes=1)
                    events.append(_ses_event("Click", row, sent, clicked, {
                        "ipAddress": "198.51.100.7", "link": "https://shop.example/?utm_source=relance"}))
                    if rng.random() < rates.order_after_click:
                        truth.orders.append(_order(row["customer_id"], clicked + timedelta(minutes=30),
                                                   f"clk-{row['send_key']}", rng, products))
        for event in events:
            bodies.append(_wrap(event, len(bodies)))
    truth.events = len(bodies)
    truth.bodies = bodies
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start:start + 10])])
    _write_orders(Path(landing), truth.orders, f"{seed}-{since:%Y%m%d%H%M}")
    return truth


def _write_orders(landing: Path, orders: list[dict[str, Any]], tag: str) -> None:
    by_hour: dict[str, list[str]] = {}
    for call in sorted(orders, key=lambda c: c["timestamp"]):
        moment = utc(call["timestamp"])
        folder = f"events/dt={moment:%Y-%m-%d}/hour={moment:%H}"
        by_hour.setdefault(folder, []).append(json.dumps(call))
    for folder, lines in by_hour.items():
        path = landing / folder
        path.mkdir(parents=True, exist_ok=True)
        (path / f"engagement-{tag}.jsonl").write_text("\n".join(lines) + "\n")
