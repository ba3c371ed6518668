"""Campaign definitions: ``include/campaigns/<id>.yaml``, validated (SPEC §7.1).

A bad file raises :class:`CampaignConfigError` naming the file, the field and what was
expected; the DAG file lets it propagate, so the error shows as an import error in Airflow
and fails the DAG-import test.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from relance import settings
from relance.campaigns.digest import DIGEST_CAMPAIGN
from relance.timeutil import parse_duration

ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,48}$")
Channel = Literal["email", "sms"]
#: the file of a template folder an SMS step renders, per locale
SMS_TEMPLATE = "sms.txt"
#: send_time: best_hour moves a message by up to a day within max_lateness: a campaign needs at
#: least this much slack for it (relance.campaigns.send_time)
SEND_TIME_MIN_SLACK = timedelta(hours=12)


class CampaignConfigError(ValueError):
    pass


def _duration(value: str | int) -> str:
    parse_duration(value)  # raises ValueError with the expected format
    return str(value)


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    delay: str = "0"
    template: str
    exit: str | None = None
    #: content queries (include/sql/content/<query>.sql) rendered as template variables
    content: list[str] = []
    #: content variables that must be non-empty, else the message is ``no_content``
    required: list[str] = []
    #: the step's channel if not the campaign's; a list is an order of preference
    #: (``[email, sms]``: by email where the customer may get email, else by SMS)
    channel: Channel | list[Channel] | None = None

    _check_delay = field_validator("delay", mode="before")(_duration)

    @property
    def delay_td(self) -> timedelta:
        return parse_duration(self.delay)

    @model_validator(mode="after")
    def _required_in_content(self) -> Step:
        missing = [r for r in self.required if r not in self.content]
        if missing:
            raise ValueError(f"required {missing} must also be listed in content {self.content}")
        if isinstance(self.channel, list) and not 1 <= len(set(self.channel)) == len(self.channel):
            raise ValueError(f"channel: a list of distinct channels, got {self.channel}")
        return self


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    weight: float = Field(gt=0)
    #: step name → template to use instead of the step's own
    templates: dict[str, str] = {}


class Campaign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    description: str
    enabled: bool = True
    category: Literal["transactional", "marketing"]
    channel: Channel = "email"
    priority: int = Field(ge=0, le=1000)
    schedule: str = "@hourly"
    trigger: str | None = None
    #: a named Python step applied to the trigger rows (relance.campaigns.transforms)
    trigger_transform: str | None = None
    lookback: str = "7d"
    max_lateness: str = "24h"
    cap_exempt: bool | None = None
    #: true for campaigns triggered by something the shopper did (an order, a cart, a
    #: sign-up): a trigger from before Relance went live — the onboarding import — plans
    #: nothing (the shop's old system handled it). False for conditions on history (90 days
    #: without an order, a consumable running out, a birthday): those count, but no step due
    #: before go-live is ever planned either way.
    skip_history: bool = False
    #: defer sends due between 21:00 and 08:00 local to 08:00 (default: marketing only)
    quiet_hours: bool | None = None
    holdout_pct: float = Field(default=0, ge=0, lt=100)
    #: a message that loses the daily cap is folded into the customer's next digest (the
    #: ``digest`` campaign, relance.dispatch.digests) instead of being capped (marketing only)
    digest: bool = False
    #: ``best_hour``: send each message at the customer's own best local hour, learned from their
    #: opens, clicks and orders, for a stable half of the customers (an A/B split against the
    #: campaign's ``fixed`` time; relance.campaigns.send_time). Marketing, with slack only.
    send_time: Literal["fixed", "best_hour"] = "fixed"
    sender: str | None = None
    variants: list[Variant] = [Variant(name="A", weight=1)]
    steps: list[Step] = Field(min_length=1)

    _check_durations = field_validator("lookback", "max_lateness", mode="before")(_duration)

    @field_validator("id")
    @classmethod
    def _id_format(cls, value: str) -> str:
        if not ID_PATTERN.match(value):
            raise ValueError("must be lower_snake_case, 2-49 characters, starting with a letter")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Campaign:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"step names must be unique, got {names}")
        variant_names = [v.name for v in self.variants]
        if len(set(variant_names)) != len(variant_names):
            raise ValueError(f"variant names must be unique, got {variant_names}")
        for variant in self.variants:
            unknown = set(variant.templates) - set(names)
            if unknown:
                raise ValueError(f"variant {variant.name} overrides unknown step(s) {sorted(unknown)}")
        if self.category == "transactional" and self.holdout_pct:
            raise ValueError("a transactional campaign cannot have a holdout")
        if self.digest and (self.category != "marketing" or self.id == DIGEST_CAMPAIGN):
            raise ValueError("digest: true is for marketing campaigns (transactional mail is never capped) "
                             f"other than the {DIGEST_CAMPAIGN} campaign itself")
        if self.send_time == "best_hour" and (self.category != "marketing" or self.id == DIGEST_CAMPAIGN
                                              or self.max_lateness_td < SEND_TIME_MIN_SLACK):
            raise ValueError("send_time: best_hour is for marketing campaigns (not the digest) whose max_lateness "
                             f"leaves slack (at least {SEND_TIME_MIN_SLACK}), got category {self.category}, "
                             f"max_lateness {self.max_lateness}")
        return self

    # -- derived ------------------------------------------------------------------
    @property
    def trigger_sql(self) -> str:
        return f"triggers/{self.trigger or self.id}"

    @property
    def is_cap_exempt(self) -> bool:
        return self.category == "transactional" if self.cap_exempt is None else self.cap_exempt

    @property
    def observes_quiet_hours(self) -> bool:
        return self.category == "marketing" if self.quiet_hours is None else self.quiet_hours

    def observes_quiet_hours_on(self, channel: str) -> bool:
        """Quiet hours for a message on ``channel``: an SMS buzzes a phone, so every SMS keeps
        them (transactional too) unless the campaign says ``quiet_hours: false``."""
        if channel == "sms" and self.quiet_hours is None:
            return True
        return self.observes_quiet_hours

    def channels_for(self, step: Step) -> tuple[str, ...]:
        """The step's channels in order of preference (the campaign's if the step names none)."""
        chosen = step.channel or self.channel
        return tuple(chosen) if isinstance(chosen, list) else (chosen,)

    @property
    def max_lateness_td(self) -> timedelta:
        return parse_duration(self.max_lateness)

    @property
    def lookback_td(self) -> timedelta:
        return parse_duration(self.lookback)

    @cached_property
    def version_hash(self) -> str:
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        for step in self.steps:  # templates and SQL are part of what was sent
            for rel in [f"sql/{self.trigger_sql}.sql", *(f"sql/content/{c}.sql" for c in step.content)]:
                path = settings.INCLUDE_DIR / rel
                payload += path.read_text() if path.exists() else ""
            for variant in self.variants:
                folder = settings.TEMPLATES_DIR / self.template_for(step, variant.name)
                for file in sorted(folder.rglob("*")) if folder.is_dir() else []:
                    payload += file.read_text() if file.is_file() else ""
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def template_for(self, step: Step, variant: str) -> str:
        for v in self.variants:
            if v.name == variant and step.name in v.templates:
                return v.templates[step.name]
        return step.template


def _format_error(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: invalid campaign definition"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(file)"
        lines.append(f"  field {where}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def load_campaign(path: Path) -> Campaign:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CampaignConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CampaignConfigError(f"{path}: expected a mapping of campaign fields at the top level")
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        raise CampaignConfigError(_format_error(path, exc)) from None
    if campaign.id != path.stem:
        raise CampaignConfigError(f"{path}: field id: {campaign.id!r} must equal the file name {path.stem!r}")
    problems = []
    if not (settings.SQL_DIR / f"{campaign.trigger_sql}.sql").exists():
        problems.append(f"field trigger: no SQL file include/sql/{campaign.trigger_sql}.sql")
    if campaign.trigger_transform and campaign.trigger_transform not in known_transforms():
        problems.append(f"field trigger_transform: unknown transform {campaign.trigger_transform!r} "
                        f"(known: {sorted(known_transforms())})")
    for i, step in enumerate(campaign.steps):
        for query in step.content:
            if not (settings.SQL_DIR / "content" / f"{query}.sql").exists():
                problems.append(f"field steps.{i}.content: no SQL file include/sql/content/{query}.sql")
        if step.exit and not (settings.SQL_DIR / "exits" / f"{step.exit}.sql").exists():
            problems.append(f"field steps.{i}.exit: no SQL file include/sql/exits/{step.exit}.sql")
        templates = {step.template, *(v.templates.get(step.name) for v in campaign.variants)} - {None}
        for template in templates:
            if not (settings.TEMPLATES_DIR / template).is_dir():
                problems.append(f"field steps.{i}.template: no template folder include/templates/{template}")
            elif "sms" in campaign.channels_for(step) and not (
                    settings.TEMPLATES_DIR / template / "fr" / SMS_TEMPLATE).is_file():
                problems.append(f"field steps.{i}.template: an SMS step needs include/templates/{template}/fr/"
                                f"{SMS_TEMPLATE} (and one per other locale)")
    if problems:
        raise CampaignConfigError(f"{path}: " + "; ".join(problems))
    return campaign


def known_transforms() -> set[str]:
    """Names of the registered trigger transforms (importing the modules that register them)."""
    import relance.campaigns.digest  # noqa: F401 - registers its transforms
    import relance.campaigns.sessions  # noqa: F401 - registers its transforms
    import relance.campaigns.shopper_steps  # noqa: F401 - registers its transforms
    from relance.campaigns.transforms import TRANSFORMS

    return set(TRANSFORMS)


def load_campaigns(folder: Path | None = None) -> dict[str, Campaign]:
    """Every campaign of ``include/campaigns``, by id, validated."""
    folder = folder or settings.CAMPAIGNS_DIR
    return {c.id: c for c in (load_campaign(p) for p in sorted(folder.glob("*.yaml")))}
