"""The Campaigns page: the report's views (campaign_daily, ab_results, holdout_lift) as
server-side SVG charts and tables. Aggregates only: no customer, email or send key reaches
the page. Every figure shown carries a ``data-key`` attribute (what the browser test reads)."""

from __future__ import annotations

import logging
import os
from datetime import datetime
from html import escape
from typing import Any

from relance import reporting, settings
from relance.webui import svg

#: the deliverability guard's Variables and defaults (SPEC §7.5)
THRESHOLDS = {"bounce": ("tm_max_bounce_rate", settings.DEFAULT_MAX_BOUNCE_RATE),
              "complaint": ("tm_max_complaint_rate", settings.DEFAULT_MAX_COMPLAINT_RATE)}
#: skip reasons, in the order the outbox's rules decide them (campaign_daily's columns)
SKIPS = ("holdout", "capped", "digested", "suppressed", "no_consent", "unsubscribed", "deferred_quiet_hours", "expired",
         "exited", "no_content", "failed", "unknown", "waiting")


def variable(key: str, default: float) -> float:
    """An Airflow Variable as the API server sees it: the environment, then the metadata DB."""
    value = os.environ.get(f"AIRFLOW_VAR_{key.upper()}")
    if value is None:
        quiet = logging.getLogger("airflow.models.variable")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)  # a missing metadata DB is not an error here
        try:
            from airflow.models import Variable

            value = Variable.get(key, default_var=None)  # noqa: AIR311 - the API server reads the metadata DB
        except Exception:  # noqa: BLE001 - no metadata DB (tests, CLI): the default
            value = None
        finally:
            quiet.setLevel(level)
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default


def thresholds() -> dict[str, float]:
    return {name: variable(key, default) for name, (key, default) in THRESHOLDS.items()}


def _int_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if k == "day" else int(v or 0)) for k, v in row.items()}


def page_data(wh) -> dict[str, Any]:
    """Everything the page shows, read from the warehouse's views."""
    figures = reporting.headline(wh)
    days = [_int_row(r) for r in wh.query("reporting/daily_outcomes")]
    sent = sum(d["sent"] for d in days)
    totals = {key: sum(d[key] for d in days) for key in ("sent", "bounced", "complained", "delivered")}
    rates = {"bounce": totals["bounced"] / sent if sent else None,
             "complaint": totals["complained"] / sent if sent else None}
    return {**figures, "days": days, "totals": totals, "rates": rates, "thresholds": thresholds(),
            "digests": reporting.digest_figures(wh), "channels": reporting.channel_figures(wh),
            "send_time": reporting.send_time_figures(wh)}


def _cell(key: str, text: str, numeric: bool = True) -> str:
    cls = ' class="n"' if numeric else ""
    return f'<td{cls} data-key="{escape(key)}">{escape(text)}</td>'


def _pct(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * float(value):.{digits}f} %"


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def funnel_section(data: dict[str, Any]) -> str:
    charts, rows = [], []
    for row in data["funnel"]:
        cid, sent = row["campaign_id"], row["sent"]
        bars = [(stage, _share(row[stage], sent), f"{row[stage]} ({_pct(_share(row[stage], sent))})")
                for stage in reporting.FUNNEL]
        charts.append(f'<figure><figcaption>{escape(cid)} · revenue {row["revenue"]:.2f}</figcaption>'
                      f'{svg.hbars(f"Funnel of {cid}", bars)}</figure>')
        rows.append("<tr>" + _cell(f"funnel:{cid}:campaign", cid, False)
                    + "".join(_cell(f"funnel:{cid}:{k}", str(row[k])) for k in ("planned", *reporting.FUNNEL))
                    + _cell(f"funnel:{cid}:revenue", f"{row['revenue']:.2f}") + "</tr>")
    table = ("<table><tr><th>campaign</th><th>planned</th>"
             + "".join(f"<th>{s}</th>" for s in reporting.FUNNEL) + "<th>revenue</th></tr>" + "".join(rows)
             + "</table>") if rows else "<p>No messages yet.</p>"
    return (f'<section id="funnel"><h2>Funnel per campaign</h2><p class="note">Sent → delivered → opened → '
            f"clicked → converted (messages credited with an order, last touch), share of sent.</p>"
            f'<div class="grid">{"".join(charts)}</div>{table}</section>')


def over_time_section(data: dict[str, Any]) -> str:
    days = data["days"]
    if not days:
        return '<section id="over-time"><h2>Sends and skips by reason over time</h2><p>No messages yet.</p></section>'
    reasons = [r for r in SKIPS if any(d[r] for d in days)]
    series = [("sent", [d["sent"] for d in days]), *((r, [d[r] for d in days]) for r in reasons)]
    chart = svg.stacked_columns("Sends and skips by reason per day", [d["day"] for d in days], series)
    head = "<tr><th>day (due)</th><th>sent</th>" + "".join(f"<th>{r}</th>" for r in reasons) + "</tr>"
    rows = "".join("<tr>" + _cell(f"day:{d['day']}:day", d["day"], False) + _cell(f"day:{d['day']}:sent", str(d["sent"]))
                   + "".join(_cell(f"day:{d['day']}:{r}", str(d[r])) for r in reasons) + "</tr>" for d in days)
    return (f'<section id="over-time"><h2>Sends and skips by reason over time</h2><p class="note">Every '
            f"decision of the outbox per day it fell due (UTC): sent, or why not.</p>{chart}"
            f"<table>{head}{rows}</table></section>")


def ab_section(data: dict[str, Any]) -> str:
    blocks = []
    for verdict in data["verdicts"]:
        cid, step = verdict["campaign_id"], verdict["step"]
        plot_rows, table_rows = [], []
        for row in verdict["variants"]:
            v = row["variant"]
            key = f"ab:{cid}:{step}:{v}"
            label = f"{v}{' (control)' if row['is_control'] else ''}"
            p = row["conversion_p_value"]
            plot_rows.append((label, row["conversion_rate"], row["conversion_rate_low"], row["conversion_rate_high"],
                              f"{_pct(row['conversion_rate'], 2)} [{_pct(row['conversion_rate_low'], 2)}, "
                              f"{_pct(row['conversion_rate_high'], 2)}]"))
            table_rows.append(
                "<tr>" + _cell(f"{key}:variant", label, False) + _cell(f"{key}:recipients", str(row["recipients"]))
                + "".join(_cell(f"{key}:{m}", f"{_pct(row[m], 2)} [{_pct(row[m + '_low'], 2)}, {_pct(row[m + '_high'], 2)}]")
                          for m in ("delivery_rate", "open_rate", "click_rate", "conversion_rate"))
                + _cell(f"{key}:revenue_per_recipient", "–" if row["revenue_per_recipient"] is None else
                        f"{row['revenue_per_recipient']:.2f} [{row['revenue_per_recipient_low'] or 0:.2f}, "
                        f"{row['revenue_per_recipient_high'] or 0:.2f}]")
                + _cell(f"{key}:p_value", "–" if p is None else f"{p:.3f}") + "</tr>")
        if verdict["winner"]:
            outcome = f"winner: {verdict['winner']} (p = {verdict['p_value']:.3f})"
        else:
            outcome = f"no significant winner yet (leading: {verdict['leader']})"
        blocks.append(
            f'<h3>{escape(cid)} · step {step} ({escape(str(verdict["step_name"]))}) — '
            f'<span data-key="ab:{escape(cid)}:{step}:verdict">{escape(outcome)}</span></h3>'
            + svg.intervals(f"Conversion rate by variant, {cid} step {step}", plot_rows)
            + "<table><tr><th>variant</th><th>recipients</th><th>delivery</th><th>open</th><th>click</th>"
              "<th>conversion</th><th>revenue / recipient</th><th>p (conversion vs control)</th></tr>"
            + "".join(table_rows) + "</table>")
    body = "".join(blocks) or "<p>No campaign with several variants has results yet.</p>"
    return (f'<section id="ab"><h2>A/B results</h2><p class="note">Conversion rate per variant with its 95 % '
            f"(Wilson) interval; open and click rates are over delivered; p-value of a two-proportion test "
            f"against the control.</p>{body}</section>")


def lift_section(data: dict[str, Any]) -> str:
    plot_rows, table_rows = [], []
    for row in data["lift"]:
        cid = row["campaign_id"]
        rel = row["conversion_lift_relative"]
        text = (f"{100 * (row['conversion_lift'] or 0):+.2f} pp [{100 * (row['conversion_lift_low'] or 0):+.2f}, "
                f"{100 * (row['conversion_lift_high'] or 0):+.2f}]")
        plot_rows.append((cid, row["conversion_lift"], row["conversion_lift_low"], row["conversion_lift_high"], text))
        key = f"lift:{cid}"
        table_rows.append(
            "<tr>" + _cell(f"{key}:campaign", cid, False)
            + _cell(f"{key}:treated", f"{_pct(row['treated_conversion_rate'], 2)} of {row['treated_customers']}")
            + _cell(f"{key}:holdout", f"{_pct(row['holdout_conversion_rate'], 2)} of {row['holdout_customers']}")
            + _cell(f"{key}:conversion_lift", text)
            + _cell(f"{key}:relative", "–" if rel is None else
                    f"{100 * rel:+.0f} % [{100 * (row['conversion_lift_relative_low'] or 0):+.0f}, "
                    f"{100 * (row['conversion_lift_relative_high'] or 0):+.0f}]")
            + _cell(f"{key}:revenue_lift", "–" if row["revenue_lift"] is None else
                    f"{row['revenue_lift']:+.2f} [{row['revenue_lift_low'] or 0:+.2f}, {row['revenue_lift_high'] or 0:+.2f}]")
            + "</tr>")
    if not plot_rows:
        return '<section id="lift"><h2>Holdout lift</h2><p>No campaign with a holdout has results yet.</p></section>'
    chart = svg.intervals("Conversion lift, treated minus holdout", plot_rows, unit="pp", zero_line=True)
    return (f'<section id="lift"><h2>Holdout lift</h2><p class="note">Intent-to-treat: customers assigned to '
            f"treatment vs held out, conversion within the window; absolute lift in percentage points with its 95 % "
            f"interval (left of the dashed line: the campaign loses orders).</p>{chart}<table><tr><th>campaign</th>"
            f"<th>treated</th><th>holdout</th><th>conversion lift</th><th>relative</th><th>revenue / customer lift"
            f"</th></tr>{''.join(table_rows)}</table></section>")


def digests_section(data: dict[str, Any]) -> str:
    figures = data.get("digests") or {}
    labels = (("folded", "messages folded into a digest"), ("digests_sent", "digests sent"),
              ("digests_waiting", "digests to come"),
              ("digests_carried_over", "digests carried over to the next one"), ("digests_not_sent", "digests not sent"))
    cells = "".join(f"<tr><td>{text}</td>" + _cell(f"digests:{key}", str(figures.get(key, 0))) + "</tr>"
                    for key, text in labels)
    return ('<section id="digests"><h2>Digests</h2><p class="note">Marketing messages that lost the daily cap '
            "in a campaign with <code>digest: true</code> go into the customer's next digest instead of being "
            f"dropped: one email, counted once against the caps.</p><table>{cells}</table></section>")


def send_time_section(data: dict[str, Any]) -> str:
    """Send-time optimisation: per campaign with ``send_time: best_hour``, its two arms."""
    rows = []
    for row in data.get("send_time") or []:
        for arm in ("best_hour", "fixed"):
            figures = row.get(arm)
            if not figures:
                continue
            key = f"send_time:{row['campaign_id']}:{arm}"
            p_value = row.get("click_p_value") if arm == "best_hour" else None
            rows.append(f"<tr><td>{escape(row['campaign_id'])}</td><td>{arm.replace('_', ' ')}</td>"
                        + _cell(f"{key}:sent", str(figures["sent"])) + _cell(f"{key}:moved", str(figures["moved"]))
                        + _cell(f"{key}:open_rate", _pct(figures["opened_rate"]))
                        + _cell(f"{key}:click_rate", _pct(figures["clicked_rate"]))
                        + _cell(f"{key}:conversion_rate", _pct(figures["converted_rate"]))
                        + _cell(f"{key}:click_p_value", f"{p_value:.3f}" if p_value is not None else "-") + "</tr>")
    body = (f"<table><tr><th>campaign</th><th>arm</th><th>sent</th><th>moved</th><th>open rate</th><th>click rate"
            f"</th><th>conversion rate</th><th>click p-value</th></tr>{''.join(rows)}</table>" if rows
            else "<p>No message of a <code>send_time: best_hour</code> campaign sent yet.</p>")
    return ('<section id="send-time"><h2>Send time</h2><p class="note">Campaigns with <code>send_time: best_hour'
            "</code>: a stable half of the customers gets the message at their own best local hour (from their "
            "opens, clicks and orders), the other half at the campaign's time.</p>" + body + "</section>")


def channels_section(data: dict[str, Any]) -> str:
    rows = data.get("channels") or []
    cells = "".join(
        f"<tr><td>{escape(str(r['channel']))}</td>" + _cell(f"channels:{r['channel']}:sent", str(r["sent"]))
        + _cell(f"channels:{r['channel']}:segments", str(r["segments"]) if r["channel"] == "sms" else "-")
        + _cell(f"channels:{r['channel']}:cost", f"{r['cost']:.2f}" if r["channel"] == "sms" else "-") + "</tr>"
        for r in rows)
    return ('<section id="channels"><h2>Channels</h2><p class="note">Messages sent by channel; an SMS costs its '
            "segments (160 GSM-7 or 70 Unicode characters each) × <code>tm_sms_cost_per_segment</code>.</p>"
            f"<table><tr><th>channel</th><th>sent</th><th>SMS segments</th><th>SMS cost</th></tr>{cells}</table>"
            "</section>")


def deliverability_section(data: dict[str, Any]) -> str:
    days, limits, rates = data["days"], data["thresholds"], data["rates"]
    labels = [d["day"][5:] for d in days]
    charts = []
    for name, column in (("bounce", "bounced"), ("complaint", "complained")):
        per_day = [d[column] / d["sent"] if d["sent"] else None for d in days]
        charts.append(f"<figure><figcaption>{name} rate per day (limit {100 * limits[name]:g} %)</figcaption>"
                      + svg.threshold_columns(f"{name} rate per day against the guard's limit", labels, per_day,
                                              limits[name]) + "</figure>")
    cells = "".join(
        f"<tr><td>{name}</td>" + _cell(f"deliverability:{name}_rate", _pct(rates[name], 2))
        + _cell(f"deliverability:{name}_limit", _pct(limits[name], 2))
        + _cell(f"deliverability:{name}_state", "–" if rates[name] is None else
                ("above the limit" if rates[name] > limits[name] else "under the limit"), False) + "</tr>"
        for name in ("bounce", "complaint"))
    totals = data["totals"]
    return (f'<section id="deliverability"><h2>Deliverability</h2><p class="note">Bounces and complaints over '
            f"sends (SES events), against the guard's limits (Variables tm_max_bounce_rate, "
            f"tm_max_complaint_rate). All time: {totals['sent']} sent, {totals['bounced']} bounced, "
            f'{totals["complained"]} complained.</p><div class="grid">{"".join(charts)}</div>'
            f"<table><tr><th>rate</th><th>all time</th><th>limit</th><th>state</th></tr>{cells}</table></section>")


STYLE = """
body{font-family:system-ui,sans-serif;margin:16px 24px;color:#1a202c;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #e2e8f0}
h3{font-size:14px;margin:14px 0 4px}.note{color:#4a5568;font-size:13px;margin:2px 0 8px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #e2e8f0;padding:3px 8px}
th{background:#f7fafc;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:8px 24px}figure{margin:4px 0}figcaption{font-size:13px;font-weight:600}
"""


def render(data: dict[str, Any], generated_at: datetime | None = None) -> str:
    as_of = data["report_date"] or "no campaign_report run yet"
    stamp = f" · page generated {generated_at:%Y-%m-%d %H:%M} UTC" if generated_at else ""
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Relance · Campaigns</title>"
            f"<style>{STYLE}</style></head><body><h1>Campaigns</h1><p class=\"note\">Relance's report: the views "
            f"campaign_daily, ab_results and holdout_lift (campaign_report as of <span data-key=\"report_date\">"
            f"{escape(str(as_of))}</span>){stamp}. Aggregates only.</p>"
            + funnel_section(data) + over_time_section(data) + ab_section(data) + lift_section(data)
            + digests_section(data) + send_time_section(data) + channels_section(data)
            + deliverability_section(data) + "</body></html>")
