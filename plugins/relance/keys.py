"""Keys and stable hashes shared by the planner and the dispatcher (a leaf: imports nothing
from ``relance``).

* :func:`send_key` — the outbox's idempotency key, one per (campaign, step, customer, trigger);
* :func:`dry_run_key` — the key a dry run writes its ``dry_run`` copy of a row under;
* :func:`bucket` — a stable number in [0, 100) per (campaign, customer, salt), for A/B variants
  and holdout groups;
* :func:`address_hash`, :func:`subject_hash` — the hashed forms an erasure keeps of an address
  and of a customer id.
"""

from __future__ import annotations

import hashlib


def send_key(campaign_id: str, step: int, customer_id: str, trigger_id: str) -> str:
    """Deterministic, unique per (campaign, step, customer, trigger instance).

    Only letters, digits, ``_`` and ``-``: it travels as an SES message tag.
    """
    digest = hashlib.sha256(f"{customer_id}\x1f{trigger_id}".encode()).hexdigest()[:24]
    return f"{campaign_id}-{step}-{digest}"


def dry_run_key(run_id: str, send_key: str) -> str:
    """The key of a dry run's copy of ``send_key``: never picked up by a rule, a cap or the sender."""
    return f"dry-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}-{send_key}"


def bucket(campaign_id: str, customer_id: str, salt: str) -> float:
    """A stable number in [0, 100) from (campaign, customer): variants and holdouts."""
    digest = hashlib.sha256(f"{salt}\x1f{campaign_id}\x1f{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def address_hash(email: str) -> str:
    """``'sha256:<hex>'`` of an address, lower-cased and trimmed: how an erasure keeps "never
    mail this address again" without keeping the address (``customers.email_hash``,
    ``suppressions.email`` of an erased customer)."""
    return "sha256:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def subject_hash(customer_id: str) -> str:
    """``'sha256:<hex>'`` of a customer id: the subject of an ``erasures`` row."""
    return "sha256:" + hashlib.sha256(customer_id.encode()).hexdigest()
