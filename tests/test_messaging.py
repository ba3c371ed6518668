"""Templates and MIME: sandboxed, escaped, per locale; headers validated."""

from __future__ import annotations

import pytest

from relance.messaging.mime import HeaderError, build_message, check_address, unsubscribe_url
from relance.messaging.templates import TemplateRenderError, money, render

CONTEXT = {
    "customer": {"first_name": "Zoé <b>", "last_name": "X", "email": "z@example.com", "locale": "fr"},
    "campaign": {"id": "cart_abandonment", "step": "reminder_2h", "variant": "A"},
    "shop": {"name": "Boutique", "url": "https://shop.example"},
    "unsubscribe_url": "https://shop.example/unsubscribe?t=1",
    "cart_items": [{"product_id": "p1", "title": "Bol <script>", "price": 12.5, "currency": "EUR",
                    "link": "https://shop.example/p1", "image_link": None}],
    "cart_recommendations": [],
}


def test_french_and_english_templates_render_with_personalised_subjects():
    fr = render("cart_abandonment/reminder", "fr", CONTEXT)
    en = render("cart_abandonment/reminder", "en-GB", CONTEXT)
    assert fr.subject == "Zoé <b>, votre Bol <script> vous attend" and fr.locale == "fr"
    assert en.subject.startswith("Zoé <b>, your Bol <script>") and en.locale == "en"
    assert "12,50\u00a0€" in fr.text and "€12.50" in en.text


def test_html_is_autoescaped_and_text_is_not():
    out = render("cart_abandonment/reminder", "fr", CONTEXT)
    assert "<script>" not in out.html and "Bol &lt;script&gt;" in out.html and "Zoé &lt;b&gt;" in out.html
    assert "Bol <script>" in out.text


def test_unknown_locale_falls_back_to_french():
    assert render("cart_abandonment/reminder", "de", CONTEXT).locale == "fr"
    assert render("cart_abandonment/reminder", None, CONTEXT).locale == "fr"


def test_a_template_error_is_a_clear_render_error():
    broken = {k: v for k, v in CONTEXT.items() if k != "cart_items"}
    with pytest.raises(TemplateRenderError, match="cart_items"):
        render("cart_abandonment/reminder", "fr", broken)


def test_the_sandbox_refuses_unsafe_attribute_access(tmp_path, monkeypatch):
    from relance import settings
    from relance.messaging import templates

    folder = tmp_path / "evil" / "fr"
    folder.mkdir(parents=True)
    (folder / "subject.txt").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    (folder / "body.html").write_text("x")
    (folder / "body.txt").write_text("x")
    monkeypatch.setattr(settings, "TEMPLATES_DIR", tmp_path)
    templates.environment.cache_clear()
    try:
        with pytest.raises(TemplateRenderError):
            render("evil", "fr", {})
    finally:
        templates.environment.cache_clear()


@pytest.mark.parametrize("bad", ["a@b.c\r\nBcc: x@y.z", "not-an-address", "", "x@y.z\n"])
def test_invalid_or_injected_addresses_are_refused(bad):
    with pytest.raises(HeaderError):
        check_address(bad)


def test_marketing_mail_carries_rfc8058_one_click_headers_and_transactional_does_not():
    url = unsubscribe_url("https://shop.example/u", "c1", "cart_abandonment", "secret")
    marketing = build_message(sender="boutique@shop.example", to="z@example.com", subject="s", text="t",
                              html="<p>h</p>", send_key="k-1", unsubscribe=url)
    assert marketing["List-Unsubscribe"] == f"<{url}>"
    assert marketing["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    receipt = build_message(sender="boutique@shop.example", to="z@example.com", subject="s", text="t",
                            html="<p>h</p>", send_key="k-2")
    assert receipt["List-Unsubscribe"] is None
    assert url != unsubscribe_url("https://shop.example/u", "c1", "cart_abandonment", "other-secret")


def test_there_is_no_default_unsubscribe_secret(monkeypatch):
    from relance import settings

    monkeypatch.delenv("AIRFLOW_VAR_TM_UNSUBSCRIBE_SECRET", raising=False)
    assert settings.unsubscribe_secret() is None       # never a public fallback anyone could sign with
    assert settings.unsubscribe_mode() == "ses"         # and the default needs none
    monkeypatch.setenv("AIRFLOW_VAR_TM_UNSUBSCRIBE_SECRET", "k")
    assert settings.unsubscribe_secret() == "k"
    monkeypatch.setenv("AIRFLOW_VAR_TM_UNSUBSCRIBE_MODE", "bogus")
    with pytest.raises(ValueError, match="tm_unsubscribe_mode"):
        settings.unsubscribe_mode()


def test_a_signed_link_verifies_only_for_its_customer_campaign_and_secret():
    from urllib.parse import parse_qs, urlsplit

    from relance.messaging.unsubscribe import verify

    query = parse_qs(urlsplit(unsubscribe_url("https://shop.example/u", "c1", "winback", "secret")).query)
    c, k, t = query["c"][0], query["k"][0], query["t"][0]
    assert verify(c, k, t, "secret")
    assert not verify("c2", k, t, "secret") and not verify(c, "cart_abandonment", t, "secret")
    assert not verify(c, k, t, "other") and not verify(c, k, t[:-1] + "0", "secret") and not verify(c, k, "", "secret")


def test_list_management_options_go_on_the_send_email_request():
    from relance.messaging.mime import RawMessage
    from relance.messaging.ses import Pacer, SesSender

    class Client:
        requests: list = []

        def send_email(self, **request):
            self.requests.append(request)
            return {"MessageId": f"m-{len(self.requests)}"}

    message = build_message(sender="boutique@shop.example", to="z@example.com", subject="s", text="t",
                            html="<p>h</p>", send_key="k-1")
    assert isinstance(message, RawMessage)
    client = Client()
    sender = SesSender(client, Pacer(0))
    sender.send(message, "k-1", "winback", list_management={"ContactListName": "relance", "TopicName": "marketing"})
    sender.send(message, "k-2", "order_confirmation")
    assert client.requests[0]["ListManagementOptions"] == {"ContactListName": "relance", "TopicName": "marketing"}
    assert "Raw" in client.requests[0]["Content"] and "ListManagementOptions" not in client.requests[1]


def test_subject_with_a_line_break_is_refused():
    with pytest.raises(HeaderError, match="Subject"):
        build_message(sender="boutique@shop.example", to="z@example.com", subject="hi\r\nBcc: x@y.z",
                      text="t", html="h", send_key="k")


def test_money_formats_per_locale():
    assert money(1234.5, "EUR", "fr") == "1\u202f234,50\u00a0€"
    assert money(1234.5, "EUR", "en") == "€1,234.50"
    assert money(None) == ""


SAMPLES = [  # (sender_name, subject, text, html, unsubscribe)
    ("Boutique Relance", "Votre panier", "Bonjour Marie,\nÀ bientôt.", "<p class=\"x\">Bonjour</p>", None),
    ("", "Plain ASCII", "line one\nline two\n", "<p>a=b</p>", "https://shop.example/u?c=1&k=w&t=abc"),
    ("Boutique \"Relance\", Paris", "Votre panier vous attend — 20 % de remise, €, ü, 日本",
     "é" * 500 + "\n" + "a" * 1200, "<p>" + "=" * 80 + "</p>\r\n<p>fin</p>", None),
    ("Ünïcode Shop", "x" * 300, "", "<p></p>", "https://shop.example/u?c=%C3%A9&k=winback&t=0"),
    ("Shop", "trailing spaces   ", "tab\there  \n\n\nend", "--=_relance_ not a boundary", None),
]


@pytest.mark.parametrize("name, subject, text, html, unsubscribe", SAMPLES)
def test_the_raw_message_reads_as_the_stdlib_builds_it(name, subject, text, html, unsubscribe):
    """build_message serialises by hand (for speed): a mail reader parses it to the very headers
    and bodies EmailMessage would have made."""
    from email import message_from_bytes, policy

    from relance.messaging.mime import build_email_message

    args = dict(sender="boutique@shop.example", to="z@example.com", subject=subject, text=text, html=html,
                send_key="k-1", unsubscribe=unsubscribe, sender_name=name)
    fast = message_from_bytes(build_message(**args).as_bytes(), policy=policy.default)
    reference = message_from_bytes(build_email_message(**args).as_bytes(), policy=policy.default)
    assert not fast.defects and all(not part.defects for part in fast.walk())
    for header in ("From", "To", "Subject", "X-Relance-Send-Key", "List-Unsubscribe", "List-Unsubscribe-Post",
                   "MIME-Version"):
        assert fast[header] == reference[header], header
    assert fast.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in fast.iter_parts()] == ["text/plain", "text/html"]
    for mine, theirs in zip(fast.iter_parts(), reference.iter_parts(), strict=True):
        assert mine.get_content().replace("\r\n", "\n") == theirs.get_content().replace("\r\n", "\n")
    raw = build_message(**args).as_bytes()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n")) and b"\n" not in raw.replace(b"\r\n", b"")


def test_an_address_that_is_not_ascii_goes_through_the_stdlib():
    message = build_message(sender="boutique@shop.example", to="josé@example.com", subject="s", text="t",
                            html="h", send_key="k")
    assert message.to and message.as_bytes().startswith(b"From: boutique@shop.example")
