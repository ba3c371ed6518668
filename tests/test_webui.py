"""The Campaigns page (relance.webui, plugin relance_campaigns_plugin) and the report's headline
figures (relance.reporting.headline), on a warehouse filled by a short engagement-simulated
run: outbox rows → planted SES events through the emulator's SQS → ingest_ses_events' drain →
orders through the landing zone → campaign_report.

* the page's figures equal the views' (both backends), and carry no personal data;
* a person's view: ``airflow api-server`` with the plugin, headless Chromium (Debian package)
  driven over the DevTools protocol, logged in with a real JWT: the nav entry, the page
  framed in the UI, a screenshot (docs/campaigns_page.png), the figures read off the page;
  without a token the page answers 401.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from relance import reporting
from relance.feedback import drain
from relance.ingest import ingest_window
from relance.results import run_report
from relance.shopsim.engagement import Plan, Rates, simulate
from relance.webui.page import page_data, render

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
START = datetime(2026, 11, 10, tzinfo=UTC)
PLAN = Plan(
    default=Rates(delivery=0.95, hard_bounce=0.6, complaint=0.03, open=0.4, click=0.08, order_after_click=0.4),
    variants={("cart_abandonment", "A"): Rates(delivery=0.96, open=0.45, click=0.10, order_after_click=0.5),
              ("cart_abandonment", "B"): Rates(delivery=0.96, open=0.50, click=0.25, order_after_click=0.5)},
    organic=0.05)
SKIPS = ("capped", "no_consent", "suppressed")


def _outbox(customers: int) -> list[dict]:
    rows = []
    for i in range(customers):
        customer, decided = f"c{i:05d}", START + timedelta(minutes=3 * i)
        for campaign, step, name in (("cart_abandonment", 1, "reminder_2h"), ("loyalty_reminder", 1, "balance")):
            if campaign == "loyalty_reminder" and i % 2:
                continue
            status = "holdout" if campaign == "cart_abandonment" and i % 4 == 0 else "sent"
            if campaign == "loyalty_reminder" and i % 10 == 4:
                status = SKIPS[(i // 10) % len(SKIPS)]
            sent = status == "sent"
            rows.append({"send_key": f"{campaign}:{step}:{customer}", "campaign_id": campaign, "campaign_version": "v1",
                         "step": step, "step_name": name,
                         "variant": ("A" if i % 2 else "B") if campaign == "cart_abandonment" else "A",
                         "customer_id": customer, "email": f"{customer}@example.com", "locale": "fr",
                         "category": "marketing", "priority": 60, "trigger_id": f"{campaign}-{customer}",
                         "trigger_at": decided, "due_at": decided, "planned_at": decided, "decided_at": decided,
                         "status": status, "attempts": int(sent), "sent_at": decided if sent else None,
                         "provider_message_id": f"ses-{uuid.uuid5(uuid.NAMESPACE_URL, campaign + customer)}"
                         if sent else None})
    return rows


def fill(wh, tmp_path: Path, customers: int = 400) -> None:
    """A short engagement-simulated run (about a day of decisions), reported."""
    from relance import aws

    rows = _outbox(customers)
    with wh.begin() as conn:
        wh.insert_rows("message_log", rows, conn)
        wh.insert_rows("campaigns", [
            {"campaign_id": cid, "version_hash": "v1", "category": "marketing", "priority": 60, "enabled": True,
             "loaded_at": START, "definition": json.dumps({"variants": variants})}
            for cid, variants in (("cart_abandonment", [{"name": "A"}, {"name": "B"}]),
                                  ("loyalty_reminder", [{"name": "A"}]))], conn)
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=f"webui-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    landing = tmp_path / "landing"
    hours = customers * 3 // 60 + 1
    for hour in range(0, hours, 4):
        since = START + timedelta(hours=hour)
        simulate(wh, sqs, url, landing, since, since + timedelta(hours=4), PLAN, seed=5, send_events=False)
        drain(wh, sqs, url, since + timedelta(hours=4), wait_seconds=0)
    end = START + timedelta(days=6)
    ingest_window(wh, str(landing), START, end)
    run_report(wh, START, end)
    sqs.delete_queue(QueueUrl=url)


def shown(html: str) -> dict[str, str]:
    """``data-key`` → text of every figure on the page."""
    from html.parser import HTMLParser

    found: dict[str, str] = {}

    class Reader(HTMLParser):
        key: str | None = None

        def handle_starttag(self, tag, attrs):
            self.key = dict(attrs).get("data-key") or self.key

        def handle_data(self, data):
            if self.key:
                found[self.key] = found.get(self.key, "") + data

        def handle_endtag(self, tag):
            self.key = None

    Reader().feed(html)
    return found


def expected_figures(wh) -> dict[str, str]:
    """What the page must show, computed straight from the views (not through the page's code)."""
    out: dict[str, str] = {}
    for row in wh.query("SELECT campaign_id, SUM(planned) AS planned, SUM(sent) AS sent, SUM(delivered) AS delivered, "
                        "SUM(opened) AS opened, SUM(clicked) AS clicked, SUM(converted) AS converted, "
                        "SUM(revenue) AS revenue FROM campaign_daily GROUP BY campaign_id"):
        cid = row["campaign_id"]
        for k in ("planned", "sent", "delivered", "opened", "clicked", "converted"):
            out[f"funnel:{cid}:{k}"] = str(int(row[k]))
        out[f"funnel:{cid}:revenue"] = f"{float(row['revenue']):.2f}"
    for row in wh.query("SELECT day, SUM(sent) AS sent, SUM(capped) AS capped, SUM(holdout) AS holdout "
                        "FROM campaign_daily GROUP BY day"):
        out[f"day:{row['day']}:sent"] = str(int(row["sent"]))
        out[f"day:{row['day']}:holdout"] = str(int(row["holdout"]))
    for row in wh.query("SELECT * FROM ab_results WHERE campaign_id IN (SELECT campaign_id FROM ab_results "
                        "GROUP BY campaign_id, step HAVING COUNT(*) > 1)"):
        key = f"ab:{row['campaign_id']}:{row['step']}:{row['variant']}"
        out[f"{key}:recipients"] = str(row["recipients"])
        out[f"{key}:conversion_rate"] = (f"{100 * row['conversion_rate']:.2f} % [{100 * row['conversion_rate_low']:.2f} %, "
                                         f"{100 * row['conversion_rate_high']:.2f} %]")
    for row in wh.query("SELECT * FROM holdout_lift"):
        out[f"lift:{row['campaign_id']}:conversion_lift"] = (
            f"{100 * row['conversion_lift']:+.2f} pp [{100 * row['conversion_lift_low']:+.2f}, "
            f"{100 * row['conversion_lift_high']:+.2f}]")
    (dl,) = wh.query("SELECT SUM(sent) AS sent, SUM(bounced) AS bounced, SUM(complained) AS complained FROM campaign_daily")
    out["deliverability:bounce_rate"] = f"{100 * int(dl['bounced']) / int(dl['sent']):.2f} %"
    out["deliverability:complaint_rate"] = f"{100 * int(dl['complained']) / int(dl['sent']):.2f} %"
    out["deliverability:bounce_limit"] = "4.00 %"
    out["deliverability:complaint_limit"] = "0.08 %"
    return out


@pytest.mark.slow
def test_page_and_headline_show_the_views_figures(wh, emulator, tmp_path, capsys):
    fill(wh, tmp_path)
    html = render(page_data(wh))
    on_page, expected = shown(html), expected_figures(wh)
    assert {k: on_page.get(k) for k in expected} == expected
    # the planted B beats A in clicks; the holdout exists; skips by reason and deliverability are drawn
    assert on_page["ab:cart_abandonment:1:verdict"].startswith(("winner", "no significant"))
    assert html.count("<svg") >= 6 and "capped" in html and "no_consent" in html
    assert 'stroke-dasharray="5,3"' in html  # the guard's thresholds
    # complaints planted at 3 % of loyalty mail (over the 0.08 % limit): the page says so
    assert on_page["deliverability:complaint_state"] == "above the limit"
    # aggregates only: no address, customer id, send key or SES message id reaches the page
    for row in wh.query("SELECT email, customer_id, send_key, provider_message_id FROM message_log"):
        for value in row.values():
            assert value is None or value not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched: no CDN

    figures = reporting.headline(wh)
    text = reporting.format_headline(figures)
    (lift,) = figures["lift"]
    assert f"lift {100 * lift['conversion_lift']:+.1f} pp" in text
    for row in figures["funnel"]:
        assert (f"{row['campaign_id']:<24} {row['sent']:>6} {row['delivered']:>9} {row['opened']:>7} "
                f"{row['clicked']:>7} {row['converted']:>9} {row['revenue']:>10.2f}") in text
    (verdict,) = figures["verdicts"]
    assert verdict["control"] == "A" and {r["variant"] for r in verdict["variants"]} == {"A", "B"}

    from relance import cli

    assert cli.main(["report", "--url", str(wh.engine.url.render_as_string(hide_password=False))]) == 0
    assert text in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.backend("postgresql")
def test_page_is_empty_but_fine_before_any_report(wh):
    html = render(page_data(wh))
    assert "No messages yet" in html and "has results yet" in html


# --- as a person would: Airflow's API server, headless Chromium -----------------------------

CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, seconds: float) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - local test server
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


class Browser:
    """Headless Chromium over the DevTools protocol (websockets): navigate, read, screenshot."""

    def __init__(self, profile: Path):
        port = _free_port()
        self.proc = subprocess.Popen([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                      f"--remote-debugging-port={port}", "--window-size=1400,1000", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_http(f"http://127.0.0.1:{port}/json/version", 30)
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))  # noqa: S310
        page = next(t for t in targets if t["type"] == "page")
        from websockets.sync.client import connect

        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None)
        self.n = 0

    def call(self, method: str, **params):
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self.n:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def open(self, url: str, ready: str, seconds: float = 60) -> None:
        """Navigate, then wait until the JavaScript expression ``ready`` is true."""
        self.call("Page.navigate", url=url)
        deadline = time.time() + seconds
        while not self.evaluate(ready):
            if time.time() > deadline:
                raise TimeoutError(f"{url}: {ready} never became true; page: {self.evaluate('document.body.innerText')}")
            time.sleep(0.5)

    def screenshot(self, path: Path, full_page: bool = False) -> None:
        params = {"format": "png"}
        if full_page:
            height = self.evaluate("document.documentElement.scrollHeight")
            self.call("Emulation.setDeviceMetricsOverride", width=1400, height=int(height), deviceScaleFactor=1,
                      mobile=False)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", **params)["data"]))
        if full_page:
            self.call("Emulation.clearDeviceMetricsOverride")

    def close(self) -> None:
        self.ws.close()
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def api_server(airflow_home, warehouse_url, tmp_path):
    """``airflow api-server`` (core API + UI + plugins) on the session's metadata DB, the simple
    auth manager with one user, the warehouse of ``warehouse_url``."""
    port = _free_port()
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"analyst": "s3cret-pw"}))
    env = {**os.environ, "AIRFLOW_CONN_WAREHOUSE": warehouse_url,
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "analyst:viewer",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
           "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
           "PYTHONPATH": str(ROOT / "plugins")}
    log = open(tmp_path / "api-server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(BIN / "airflow"), "api-server", "-H", "127.0.0.1", "-p", str(port), "-w", "1"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/api/v2/monitor/health", 120)
        yield base
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


@pytest.mark.slow
@pytest.mark.backend("sqlite")
@pytest.mark.skipif(CHROMIUM is None and os.environ.get("CI", "").lower() not in ("1", "true", "yes"),
                    reason="needs Debian's chromium (apt-get install -y chromium); under CI a failure")
@pytest.mark.timeout(600)
def test_campaigns_page_in_the_airflow_ui(wh, emulator, tmp_path, api_server):
    fill(wh, tmp_path)
    expected = expected_figures(wh)
    page = f"{api_server}/relance/campaigns"

    # behind the API server's authentication
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(page)  # noqa: S310
    assert refused.value.code == 401
    login = urllib.request.Request(f"{api_server}/auth/token", method="POST",
                                   data=json.dumps({"username": "analyst", "password": "s3cret-pw"}).encode(),
                                   headers={"Content-Type": "application/json"})
    token = json.load(urllib.request.urlopen(login))["access_token"]  # noqa: S310
    # the plugin is registered: a nav entry framing the page
    plugins = urllib.request.Request(f"{api_server}/api/v2/plugins", headers={"Authorization": f"Bearer {token}"})
    (plugin,) = [p for p in json.load(urllib.request.urlopen(plugins))["plugins"]  # noqa: S310
                 if p["name"] == "relance_campaigns"]
    assert plugin["external_views"][0]["url_route"] == "campaigns"

    browser = Browser(tmp_path / "chromium-profile")
    try:
        browser.call("Network.enable")
        browser.call("Network.setCookie", name="_token", value=token, url=api_server, path="/")
        # the page itself: its figures, as the browser renders them
        browser.open(page, "document.querySelector('#deliverability') !== null")
        on_page = browser.evaluate("Object.fromEntries([...document.querySelectorAll('[data-key]')]"
                                   ".map(e => [e.dataset.key, e.textContent]))")
        assert {k: on_page.get(k) for k in expected} == expected
        assert browser.evaluate("document.querySelectorAll('svg').length") >= 6
        assert browser.evaluate("document.title") == "Relance · Campaigns"
        docs = ROOT / "docs"
        browser.screenshot(tmp_path / "campaigns_page.png", full_page=True)
        # inside the Airflow UI: the nav entry, the page framed
        browser.open(f"{api_server}/plugin/campaigns",
                     "(() => { const f = document.querySelector('iframe'); return !!(f && f.contentDocument"
                     " && f.contentDocument.querySelector('#funnel')); })()", seconds=90)
        assert browser.evaluate("document.querySelector('iframe').getAttribute('src')").endswith("/relance/campaigns")
        assert "Campaigns" in browser.evaluate("document.body.innerText")
        time.sleep(1)
        browser.screenshot(tmp_path / "campaigns_in_airflow.png")
    finally:
        browser.close()
    for name in ("campaigns_page.png", "campaigns_in_airflow.png"):
        shot = tmp_path / name
        assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("RELANCE_UPDATE_SCREENSHOTS"):
            shutil.copy(shot, docs / name)
