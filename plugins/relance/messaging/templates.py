"""Email templates (SPEC §7.9): sandboxed Jinja2, HTML autoescaped, plain-text part, per locale.

Layout: ``include/templates/<template>/<locale>/{subject.txt, body.html, body.txt}``, and
``sms.txt`` for a template an SMS step sends (:func:`render_sms`); a locale without its own
folder falls back to ``fr``. Any error (syntax, undefined variable, sandbox
violation) raises :class:`TemplateRenderError`, and the dispatcher fails that message closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

from relance import settings

FALLBACK_LOCALE = "fr"
SUPPORTED_LOCALES = ("fr", "en")


class TemplateRenderError(RuntimeError):
    pass


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str
    locale: str


def money(value: Any, currency: str | None = "EUR", locale: str = FALLBACK_LOCALE) -> str:
    if value is None:
        return ""
    amount = float(value)
    symbol = {"EUR": "€", "USD": "$", "GBP": "£", "CAD": "$ CA"}.get(currency or "EUR", currency or "")
    if locale == "fr":
        return f"{amount:,.2f}".replace(",", "\u202f").replace(".", ",") + f"\u00a0{symbol}"
    return f"{symbol}{amount:,.2f}"


def normalise_locale(locale: str | None) -> str:
    base = (locale or "").split("-")[0].split("_")[0].lower()
    return base if base in SUPPORTED_LOCALES else FALLBACK_LOCALE


@cache
def environment(locale: str) -> ImmutableSandboxedEnvironment:
    """One Jinja environment per locale and process. ``auto_reload`` off: a template is read and
    compiled once, not checked against its file's mtime at every render (five ``stat`` calls a
    message, each a chance for the send task's courier threads to take the GIL) — every Airflow
    task runs in a process of its own, so an edited template takes effect at the next task."""
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(settings.TEMPLATES_DIR)),
        auto_reload=False,
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=False,
    )
    env.filters["money"] = lambda value, currency="EUR": money(value, currency, locale)
    return env


@cache
def locale_of(templates_dir: Path, template: str, locale: str) -> str:
    """``locale`` if ``template`` has a folder for it, else the fallback (looked up once per
    process, like the templates themselves)."""
    return locale if (templates_dir / template / locale).is_dir() else FALLBACK_LOCALE


def render(template: str, locale: str | None, context: dict[str, Any]) -> Rendered:
    """Render the three parts of ``template`` for ``locale``; raise TemplateRenderError."""
    loc = locale_of(settings.TEMPLATES_DIR, template, normalise_locale(locale))
    env = environment(loc)
    try:
        subject = env.get_template(f"{template}/{loc}/subject.txt").render(context)
        subject = " ".join(subject.split())  # one line, whatever the template did
        full = {**context, "subject": subject}
        html = env.get_template(f"{template}/{loc}/body.html").render(full)
        text = env.get_template(f"{template}/{loc}/body.txt").render(full)
    except TemplateError as exc:
        where = getattr(exc, "name", None) or template
        line = getattr(exc, "lineno", None)
        raise TemplateRenderError(f"template {where}{f' line {line}' if line else ''}: {exc}") from exc
    except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
        raise TemplateRenderError(f"template {template} ({loc}): {type(exc).__name__}: {exc}") from exc
    return Rendered(subject=subject, html=html, text=text, locale=loc)


def render_sms(template: str, locale: str | None, context: dict[str, Any]) -> tuple[str, str]:
    """The text of ``<template>/<locale>/sms.txt`` (lines stripped, blank lines dropped) and
    the locale used; raise TemplateRenderError."""
    loc = normalise_locale(locale)
    if not (settings.TEMPLATES_DIR / template / loc / "sms.txt").is_file():
        loc = FALLBACK_LOCALE
    try:
        text = environment(loc).get_template(f"{template}/{loc}/sms.txt").render(context)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        raise TemplateRenderError(f"template {template}/{loc}/sms.txt{f' line {line}' if line else ''}: {exc}") \
            from exc
    except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
        raise TemplateRenderError(f"template {template} ({loc}, sms): {type(exc).__name__}: {exc}") from exc
    return "\n".join(line.strip() for line in text.splitlines() if line.strip()), loc
