"""Configuration: the only module that reads connections, variables and environment.

The contract is SPEC §4. Every value is resolved in this order:

1. the environment (``AIRFLOW_CONN_WAREHOUSE``, ``AIRFLOW_VAR_TM_LANDING`` …), which is also
   what Airflow itself reads first, so a task and the ``relance`` command line agree;
2. inside a running Airflow task, Airflow's own Connection / Variable lookup (the metadata
   database or a secrets backend, through the Task SDK);
3. the embedded defaults under ``<repo>/.local``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from urllib.parse import quote

REPO_ROOT = Path(os.environ.get("RELANCE_HOME", Path(__file__).resolve().parents[2]))
INCLUDE_DIR = REPO_ROOT / "include"
SQL_DIR = INCLUDE_DIR / "sql"
TEMPLATES_DIR = INCLUDE_DIR / "templates"
CAMPAIGNS_DIR = INCLUDE_DIR / "campaigns"
MODELS_DIR = REPO_ROOT / "models"
LOCAL_DIR = REPO_ROOT / ".local"

WAREHOUSE_CONN_ID = "warehouse"
AWS_CONN_ID = "aws_default"

DEFAULT_SENDER = "boutique@shop.example"
DEFAULT_MAX_SEND_RATE = 14.0

#: Airflow pool shared by every mapped send task of every dispatcher run (SPEC §7.10).
SES_POOL = "ses_send"
#: Slots of that pool: how many send tasks run at once. They share one send rate, whatever their
#: number (``relance.messaging.ratelimit``: slots from a timeline in the warehouse or Redis).
SES_POOL_SLOTS = 4


def _in_airflow_task() -> bool:
    if "airflow.sdk" not in sys.modules:
        return False  # a task runs with the SDK imported: outside Airflow, no 9 s import to learn it
    try:
        from airflow.sdk import get_current_context

        get_current_context()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not inside a task"
        return False


def variable(key: str, default: str | None = None) -> str | None:
    """An Airflow Variable, from the environment, then Airflow, then ``default``."""
    env = os.environ.get(f"AIRFLOW_VAR_{key.upper()}")
    if env is not None:
        return env
    if _in_airflow_task():
        from airflow.sdk import Variable

        try:
            return Variable.get(key, default=default)
        except Exception:  # noqa: BLE001 - missing variable → default
            return default
    return default


def _uri_from_connection_fields(conn) -> str:
    conn_type = (conn.conn_type or "").lower()
    if conn_type in ("postgres", "postgresql"):
        auth = ""
        if conn.login:
            auth = quote(conn.login, safe="")
            if conn.password:
                auth += ":" + quote(conn.password, safe="")
            auth += "@"
        port = f":{conn.port}" if conn.port else ""
        return f"postgresql://{auth}{conn.host}{port}/{conn.schema or ''}"
    if conn_type == "sqlite":
        return f"sqlite:///{conn.host}"
    return conn.get_uri()


def normalise_db_uri(uri: str) -> str:
    """Accept Airflow-style ``postgres://`` URIs as well as SQLAlchemy ones."""
    if uri.startswith("postgres://"):
        uri = "postgresql://" + uri[len("postgres://") :]
    return uri


def warehouse_uri() -> str:
    """SQLAlchemy URI of the warehouse (connection ``warehouse``)."""
    env = os.environ.get("AIRFLOW_CONN_WAREHOUSE")
    if env:
        env = env.strip()
        if env.startswith("{"):
            data = json.loads(env)
            from types import SimpleNamespace

            fields = {k: data.get(k) for k in ("conn_type", "host", "login", "password", "port", "schema")}
            return normalise_db_uri(_uri_from_connection_fields(SimpleNamespace(**fields, get_uri=lambda: "")))
        return normalise_db_uri(env)
    if _in_airflow_task():
        try:
            from airflow.sdk import Connection

            return normalise_db_uri(_uri_from_connection_fields(Connection.get(WAREHOUSE_CONN_ID)))
        except Exception:  # noqa: BLE001 - no such connection → embedded default
            pass
    LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{LOCAL_DIR / 'warehouse.db'}"


def landing_uri() -> str:
    """Landing zone: a local path or ``s3://bucket/prefix`` (variable ``tm_landing``)."""
    return variable("tm_landing") or str(LOCAL_DIR / "landing")


def sender() -> str:
    return variable("tm_sender") or DEFAULT_SENDER


def max_send_rate() -> float:
    raw = variable("tm_ses_max_send_rate")
    return float(raw) if raw else DEFAULT_MAX_SEND_RATE


#: SES calls one send task keeps in flight (Variable ``tm_ses_send_concurrency``): a call is
#: a network round trip (tens of milliseconds to SES), so one call at a time caps a task far
#: below the account's rate; the shared limiter still spaces every departure.
DEFAULT_SEND_CONCURRENCY = 4


def send_concurrency() -> int:
    raw = variable("tm_ses_send_concurrency")
    return max(1, int(raw)) if raw else DEFAULT_SEND_CONCURRENCY


def send_rate_limiter() -> str:
    """Where the send tasks share the send rate (``relance.messaging.ratelimit``): ``warehouse``
    (default: a row of the warehouse) or a Redis URL, e.g. the Celery broker's (variable
    ``tm_send_rate_limiter``)."""
    return variable("tm_send_rate_limiter") or "warehouse"


def ses_events_queue() -> str | None:
    return variable("tm_ses_events_queue")


def events_queue() -> str | None:
    """The SQS queue (URL or name) where Segment's AWS destination also puts the calls: the
    ``transactional_now`` DAG's input (variable ``tm_events_queue``; unset: hourly path only)."""
    return variable("tm_events_queue")


def unsubscribe_base_url() -> str:
    return variable("tm_unsubscribe_url") or "https://shop.example/unsubscribe"


def unsubscribe_secret() -> str | None:
    """The HMAC key of signed unsubscribe links: Variable ``tm_unsubscribe_secret``. No default
    (a public fallback would let anyone forge unsubscribe links): None when unset, and the
    dispatcher then fails the marketing sends that need a signed link, naming the Variable."""
    return variable("tm_unsubscribe_secret") or None


def wall_clock():
    """The real time, used only by the staleness guard and for claim timestamps (SPEC §4).

    ``RELANCE_SIMULATED_NOW`` (ISO 8601) replaces it in simulations — the demo replays past
    days hour by hour and sets it to each run's as-of; tests set it to pin the guard.
    """
    from datetime import UTC, datetime

    simulated = os.environ.get("RELANCE_SIMULATED_NOW")
    if simulated:
        return datetime.fromisoformat(simulated.replace("Z", "+00:00")).astimezone(UTC)
    return datetime.now(UTC)


SHOP_NAME = "Boutique Relance"
SHOP_URL = "https://shop.example"


#: Quiet hours in the customer's time zone (SPEC §7.6): [21:00, 08:00) → deferred to 08:00.
QUIET_HOURS_START = 21
QUIET_HOURS_END = 8
#: Time zone assumed for a customer whose identify carried none (Variable ``tm_default_timezone``).
DEFAULT_TIMEZONE = "Europe/Paris"


def default_timezone() -> str:
    """The shop's time zone, for customers whose identify carried none: Variable
    ``tm_default_timezone`` (an IANA name), else Europe/Paris. The planner (local days), the
    caps (local calendar day) and quiet hours all use it through
    :func:`relance.timeutil.customer_zone`."""
    return variable("tm_default_timezone") or DEFAULT_TIMEZONE


def frequency_caps() -> tuple[int, int]:
    """Marketing emails per customer: (per rolling day, per rolling 7 days), SPEC §7.4.

    Variables ``tm_cap_per_day`` and ``tm_cap_per_week``; defaults 1 and 3.
    """
    return int(variable("tm_cap_per_day") or 1), int(variable("tm_cap_per_week") or 3)


def digest_every() -> str:
    """When digests go out (issue 12): ``day`` (default: the local day after the one whose cap
    a message lost) or a weekday, ``monday`` … ``sunday`` (a weekly digest on the next such
    local day). Variable ``tm_digest_every``; anything else fails loudly."""
    value = (variable("tm_digest_every") or "day").strip().lower()
    allowed = ("day", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    if value not in allowed:
        raise ValueError(f"Variable tm_digest_every must be one of {', '.join(allowed)}, got {value!r}")
    return value


# -- SMS (issue 12, item 3; README "SMS") ----------------------------------------------------
#: SMS quiet hours in the customer's time zone: an SMS buzzes a phone, so they apply to every SMS
#: (transactional too, unless its campaign says ``quiet_hours: false``). 20:00–08:00 is the French
#: operators' code of conduct for commercial SMS.
DEFAULT_SMS_QUIET_HOURS = (20, 8)
SMS_PROVIDERS = ("sns", "end_user_messaging")


def sms_frequency_caps() -> tuple[int, int]:
    """Marketing SMS per customer: (per local day, per rolling 7 days), counted apart from email.
    Variables ``tm_sms_cap_per_day`` and ``tm_sms_cap_per_week``; defaults 1 and 2."""
    return int(variable("tm_sms_cap_per_day") or 1), int(variable("tm_sms_cap_per_week") or 2)


def sms_quiet_hours() -> tuple[int, int]:
    """(start, end) local hours of SMS quiet hours: Variable ``tm_sms_quiet_hours`` as ``20-8``."""
    raw = variable("tm_sms_quiet_hours")
    if not raw:
        return DEFAULT_SMS_QUIET_HOURS
    start, _, end = raw.partition("-")
    return int(start), int(end)


def sms_cost_per_segment() -> float:
    """What one SMS segment costs (Variable ``tm_sms_cost_per_segment``, in the currency of the
    AWS bill; default 0.07, about SNS's price for France): recorded per message in
    ``message_log.sms_cost``."""
    raw = variable("tm_sms_cost_per_segment")
    return float(raw) if raw else 0.07


def sms_provider() -> str:
    """``sns`` (default: SNS ``Publish`` to the number) or ``end_user_messaging`` (AWS End User
    Messaging SMS ``SendTextMessage``): Variable ``tm_sms_provider``."""
    provider = (variable("tm_sms_provider") or "sns").strip().lower()
    if provider not in SMS_PROVIDERS:
        raise ValueError(f"Variable tm_sms_provider: {provider!r} is not one of {SMS_PROVIDERS}")
    return provider


def sms_sender_id() -> str | None:
    """Alphanumeric sender ID shown on the phone (Variable ``tm_sms_sender_id``, e.g. BOUTIQUE)."""
    return variable("tm_sms_sender_id") or None


def sms_origination_identity() -> str | None:
    """End User Messaging: the phone number, pool or sender ID to send from (``tm_sms_origination_identity``)."""
    return variable("tm_sms_origination_identity") or None


def sms_configuration_set() -> str | None:
    """End User Messaging: the configuration set whose event destinations get delivery events
    (``tm_sms_configuration_set``)."""
    return variable("tm_sms_configuration_set") or None


def sms_default_calling_code() -> str:
    """Country calling code given to a national phone number (``06 12 34 56 78``) at ingest:
    Variable ``tm_sms_default_calling_code``, default 33 (France); empty: national numbers are dropped."""
    value = variable("tm_sms_default_calling_code")
    return "33" if value is None else value.strip().lstrip("+")


def model_store() -> str:
    """Where models and their cards go: variable ``tm_model_store`` (a path or ``s3://bucket/prefix``),
    else ``<repo>/models``."""
    return variable("tm_model_store") or str(MODELS_DIR)


def soft_bounce_rule() -> tuple[int, int]:
    """Repeated soft bounces (issue 8): an address whose transient bounces since its last
    delivery reach this many messages, spread over at least this many days, is suppressed like
    a hard bounce. Variables ``tm_soft_bounce_limit`` and ``tm_soft_bounce_days``; defaults 3, 7."""
    return int(variable("tm_soft_bounce_limit") or 3), int(variable("tm_soft_bounce_days") or 7)


def attribution_windows() -> tuple[int, int]:
    """Last-touch attribution windows in days (SPEC §4): (after a click, after an open).
    Variables ``tm_attribution_click_days`` and ``tm_attribution_open_days``; defaults 5, 1."""
    return (int(variable("tm_attribution_click_days") or 5), int(variable("tm_attribution_open_days") or 1))


#: Hours back every ingest run also looks for landing files not loaded yet (SPEC §5).
DEFAULT_INGEST_TRAILING_HOURS = 48


def ingest_trailing_hours() -> int:
    """How far back (hours before the run's interval) ``ingest_behaviour`` looks for event files
    that landed late or were missed while the scheduler was down: Variable
    ``tm_ingest_trailing_hours``, default 48. Each such file is loaded exactly once."""
    raw = variable("tm_ingest_trailing_hours")
    return int(raw) if raw else DEFAULT_INGEST_TRAILING_HOURS


#: Deliverability guard thresholds (SPEC §4, §7.5), under SES's review levels of 5 % and 0.1 %.
DEFAULT_MAX_BOUNCE_RATE = 0.04
DEFAULT_MAX_COMPLAINT_RATE = 0.0008


def max_bounce_rate() -> float:
    """Deliverability guard: marketing is held while the permanent-bounce rate of recent sends is
    above this (Variable ``tm_max_bounce_rate``, default 0.04). Window and minimum volume:
    :mod:`relance.dispatch.policy`."""
    raw = variable("tm_max_bounce_rate")
    return float(raw) if raw else DEFAULT_MAX_BOUNCE_RATE


def max_complaint_rate() -> float:
    """Deliverability guard: marketing is held while the complaint rate of recent sends is above
    this (Variable ``tm_max_complaint_rate``, default 0.0008)."""
    raw = variable("tm_max_complaint_rate")
    return float(raw) if raw else DEFAULT_MAX_COMPLAINT_RATE


#: How marketing mail carries its one-click unsubscribe (Variable ``tm_unsubscribe_mode``).
UNSUBSCRIBE_MODES = ("ses", "signed_link")


def unsubscribe_mode() -> str:
    """``ses`` (default): SES subscription management — ``ListManagementOptions`` on each
    marketing send, SES hosts the unsubscribe page and publishes ``Subscription`` events; no
    secret needed. ``signed_link``: the shop's own endpoint (``tm_unsubscribe_url``) verifies an
    HMAC signed with ``tm_unsubscribe_secret`` (:mod:`relance.messaging.unsubscribe`)."""
    mode = (variable("tm_unsubscribe_mode") or "ses").strip().lower()
    if mode not in UNSUBSCRIBE_MODES:
        raise ValueError(f"Variable tm_unsubscribe_mode: {mode!r} is not one of {UNSUBSCRIBE_MODES}")
    return mode


def ses_contact_list() -> str:
    """SES contact list of subscription management (one per AWS account): Variable
    ``tm_ses_contact_list``, default ``relance``; created by ``relance ses setup``."""
    return variable("tm_ses_contact_list") or "relance"


def ses_unsubscribe_topic() -> str:
    """The topic of that list marketing mail belongs to: Variable ``tm_ses_topic``, default
    ``marketing`` (a contact who unsubscribes from it or from the whole list gets no more marketing)."""
    return variable("tm_ses_topic") or "marketing"
