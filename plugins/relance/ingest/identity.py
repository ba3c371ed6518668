"""Who a call is about: Segment ``userId``, an ``anonymousId`` linked to one, or a guest.

* An ``identify`` carrying both ``userId`` and ``anonymousId``, or an ``alias`` call
  (``previousId`` → ``userId``), links the anonymous id to the customer in ``identity_links``
  (first link loaded wins). Anonymous events get that customer at load, whichever of the link
  and the events arrives first (``include/sql/ingest/link_anonymous_events.sql``).
* A guest checkout (no ``userId``, an email in the order or in ``context.traits``) belongs to
  the stable customer id :func:`guest_customer_id` of that email.
"""

from __future__ import annotations

import hashlib

GUEST_PREFIX = "guest-"


def guest_customer_id(email: str) -> str:
    """``guest-`` + the first 16 hex chars of sha256(trimmed, lower-cased email): the same guest
    gets the same id in every file, and from every part of Relance that meets a guest."""
    return GUEST_PREFIX + hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()[:16]
