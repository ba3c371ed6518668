"""The ``relance`` command line: ``db upgrade``, ``shopsim``, ``report``, ``demo``, ``ses setup``, ``forget``."""

from __future__ import annotations

import argparse
import sys


def _db_upgrade(args: argparse.Namespace) -> int:
    from relance import warehouse

    wh = warehouse.Warehouse(args.url)
    applied = wh.upgrade()
    print(f"warehouse {wh.engine.url.render_as_string(hide_password=True)}: "
          + (f"applied {', '.join(applied)}" if applied else "up to date"))
    return 0


def _report(args: argparse.Namespace) -> int:
    from relance import reporting, warehouse

    wh = warehouse.connect(args.url)
    print(reporting.format_campaign_summary(reporting.campaign_summary(wh)))
    print(reporting.format_channels(reporting.channel_figures(wh)))
    print(reporting.format_send_time(reporting.send_time_figures(wh)))
    print()
    print(reporting.format_headline(reporting.headline(wh)))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from relance import demo

    return demo.run(customers=args.customers, days=args.days, seed=args.seed, start=args.start)


def _emulator(args: argparse.Namespace) -> int:
    from relance import demo

    proc = demo.start_emulator(args.port)
    demo.prepare_emulator()
    print(f"SES/S3/SQS emulator on http://127.0.0.1:{args.port}" + (" (started)" if proc else " (already running)"))
    return 0


def _ses_setup(args: argparse.Namespace) -> int:
    """The deploy step of SES subscription management: the contact list and its marketing topic."""
    from relance import aws, settings
    from relance.messaging.ses import setup_subscription_management

    contact_list = args.contact_list or settings.ses_contact_list()
    topic = args.topic or settings.ses_unsubscribe_topic()
    done = setup_subscription_management(aws.client("sesv2"), contact_list, topic)
    print(f"SES subscription management: contact list {contact_list}, topic {topic}: "
          + (f"created {', '.join(done)}" if done else "already set up"))
    return 0


def _forget(args: argparse.Namespace) -> int:
    """An erasure request: the customer's personal data out of every table, a hashed suppression kept."""
    from relance import privacy, settings, warehouse

    done = privacy.forget_customer(warehouse.connect(args.url), args.customer_id, settings.wall_clock())
    tables = ", ".join(f"{t} {n}" for t, n in sorted(done["tables"].items())) or "nothing left to remove"
    print(f"erasure done: {done['addresses']} address(es) kept only hashed on the suppression list; "
          f"{done['rows_changed']} row(s) deleted or scrubbed ({tables})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relance", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="warehouse schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="create or migrate the warehouse schema (idempotent)")
    up.add_argument("--url", help="SQLAlchemy URI (default: the 'warehouse' connection)")
    up.set_defaults(func=_db_upgrade)

    sim = sub.add_parser("shopsim", help="generate a synthetic shop's landing zone", add_help=False)
    sim.set_defaults(func=None)

    rep = sub.add_parser("report", help="per-campaign summary of the outbox and the report's headline figures")
    rep.add_argument("--url", help="SQLAlchemy URI (default: the 'warehouse' connection)")
    rep.set_defaults(func=_report)

    demo = sub.add_parser("demo", help="synthetic shop → Airflow runs over the simulated days → summary")
    demo.add_argument("--customers", type=int, default=2000)
    demo.add_argument("--days", type=int, default=3, help="simulated days (3: long enough for the cart series' 48 h reminder)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--start", default="2026-11-16", help="first simulated day (YYYY-MM-DD)")
    demo.set_defaults(func=_demo)

    emu = sub.add_parser("emulator", help="start the local SES/S3/SQS emulator (moto server) if not running")
    emu.add_argument("--port", type=int, default=5055)
    emu.set_defaults(func=_emulator)

    ses = sub.add_parser("ses", help="Amazon SES set-up")
    ses_sub = ses.add_subparsers(dest="ses_command", required=True)
    setup = ses_sub.add_parser("setup", help="create the contact list and topic of SES subscription management "
                                             "(one-click unsubscribe hosted by SES; idempotent)")
    setup.add_argument("--contact-list", help="default: Variable tm_ses_contact_list, else 'relance'")
    setup.add_argument("--topic", help="default: Variable tm_ses_topic, else 'marketing'")
    setup.set_defaults(func=_ses_setup)

    forget = sub.add_parser("forget", help="erasure request: remove a customer's personal data from every table; "
                                           "their addresses stay suppressed, hashed, so they are never mailed again")
    forget.add_argument("customer_id", help="the customer's Segment userId")
    forget.add_argument("--url", help="SQLAlchemy URI (default: the 'warehouse' connection)")
    forget.set_defaults(func=_forget)

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["shopsim"]:
        from relance.shopsim import main as shopsim_main

        return shopsim_main(argv[1:])
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
