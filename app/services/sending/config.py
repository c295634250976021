"""An instance's ``provider_config`` as the sender reads it: which provider serves each channel,
the sender identity, the sending window and the daily limit (domain.md, "Sending").

``parse`` checks the shape of what is given (createInstance refuses a bad value at once);
``missing_for_start`` says what a start still needs for the channels and actions the template
uses. Unknown keys are kept and ignored: the config also carries the frontend's own settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.domain.addresses import problem as address_problem
from app.domain.enums import Channel, LinkedInAction, Provider
from app.domain.limits import DAILY_LIMIT_MAX

PROVIDERS: dict[Channel, tuple[Provider, ...]] = {
    Channel.EMAIL: (Provider.POSTMARK, Provider.LEMLIST),
    Channel.LINKEDIN: (Provider.PHANTOMBUSTER, Provider.LEMLIST),
}
"""Who can serve each channel; the first is the default when the config names none."""
PROVIDER_KEY = {Channel.EMAIL: "email_provider", Channel.LINKEDIN: "linkedin_provider"}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_TEXT_MAX = 255


class ConfigProblem(ValueError):
    """One thing wrong with a provider_config, phrased to follow the words "provider_config"."""


@dataclass(frozen=True, slots=True)
class Window:
    """The local hours and days an instance may send in."""

    zone: ZoneInfo
    days: frozenset[int] = frozenset(range(7))
    start: time = time(0, 0)
    end: time | None = None
    """None: until midnight."""

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.zone)

    def is_open(self, at: datetime) -> bool:
        now = self.local(at)
        clock = now.time().replace(tzinfo=None)
        return (
            now.weekday() in self.days
            and clock >= self.start
            and (self.end is None or clock < self.end)
        )

    def next_open(self, at: datetime) -> datetime:
        """``at`` when open, else the next moment the window opens (within two weeks).

        Compared as instants, not as wall-clock times: a local time the clock passes twice
        (autumn) is tried at both instants, and one it skips (spring) only counts if the
        window is open then."""
        if self.is_open(at):
            return at
        local = self.local(at)
        for offset in range(15):
            day = local.date() + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            wall = datetime.combine(day, self.start, self.zone)
            for opening in sorted({wall.astimezone(UTC), wall.replace(fold=1).astimezone(UTC)}):
                if opening > at and self.is_open(opening):
                    return opening
        raise AssertionError("a window with at least one day opens within two weeks")


@dataclass(frozen=True, slots=True)
class SendingConfig:
    providers: dict[Channel, Provider] = field(default_factory=dict)
    from_email: str | None = None
    from_name: str | None = None
    message_stream: str = "outbound"
    agents: dict[LinkedInAction, str] = field(default_factory=dict)
    lemlist_campaign_id: str | None = None
    window: Window | None = None
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    daily_limit: int | None = None

    def provider(self, channel: Channel) -> Provider:
        return self.providers.get(channel, PROVIDERS[channel][0])

    def is_open(self, at: datetime) -> bool:
        return self.window is None or self.window.is_open(at)

    def next_open(self, at: datetime) -> datetime:
        return at if self.window is None else self.window.next_open(at)

    def local_day(self, at: datetime) -> date:
        """The day a daily limit counts in: the instance's own calendar day."""
        return at.astimezone(self.zone).date()


def _text(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > _TEXT_MAX:
        raise ConfigProblem(f"{key} must be a non-empty string of at most {_TEXT_MAX} characters")
    return value.strip()


def _clock(config: Mapping[str, Any], key: str) -> time | None:
    value = config.get(key)
    if value is None:
        return None
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise ConfigProblem(f"{key} must be a local time HH:MM, e.g. 09:00")
    return time(int(match.group(1)), int(match.group(2)))


def _providers(config: Mapping[str, Any]) -> dict[Channel, Provider]:
    chosen: dict[Channel, Provider] = {}
    for channel, key in PROVIDER_KEY.items():
        value = config.get(key)
        if value is None:
            continue
        allowed = [p.value for p in PROVIDERS[channel]]
        if value not in allowed:
            raise ConfigProblem(f"{key} must be one of {', '.join(allowed)}")
        chosen[channel] = Provider(value)
    return chosen


def _agents(config: Mapping[str, Any]) -> dict[LinkedInAction, str]:
    value = config.get("phantombuster_agents")
    if value is None:
        return {}
    actions = {a.value for a in LinkedInAction}
    if not isinstance(value, dict) or not all(
        k in actions and isinstance(v, str | int) and not isinstance(v, bool) and str(v).strip()
        for k, v in value.items()
    ):
        raise ConfigProblem(
            "phantombuster_agents must map LinkedIn actions ("
            + ", ".join(sorted(actions))
            + ") to agent ids"
        )
    return {LinkedInAction(k): str(v).strip() for k, v in value.items()}


def _zone(config: Mapping[str, Any]) -> ZoneInfo | None:
    name = config.get("timezone")
    if name is None:
        return None
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        # OSError: a directory of the zone database ("Europe"), a name too long for a file.
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise ConfigProblem("timezone must be an IANA time zone name, e.g. Europe/Paris")


def _window(config: Mapping[str, Any], zone: ZoneInfo | None) -> Window | None:
    days_value = config.get("send_days")
    start, end = _clock(config, "send_from"), _clock(config, "send_until")
    if days_value is None and start is None and end is None:
        return None
    if days_value is not None and (
        not isinstance(days_value, list)
        or not days_value
        or not all(isinstance(d, str) and d.lower() in DAYS for d in days_value)
    ):
        raise ConfigProblem("send_days must be a non-empty list of " + ", ".join(DAYS))
    if start is not None and end is not None and end <= start:
        raise ConfigProblem("send_until must be later than send_from (same local day)")
    days = frozenset(DAYS.index(d.lower()) for d in days_value) if days_value else None
    return Window(
        zone=zone or ZoneInfo("UTC"),
        days=days if days is not None else frozenset(range(7)),
        start=start or time(0, 0),
        end=end,
    )


def _daily_limit(config: Mapping[str, Any]) -> int | None:
    value = config.get("daily_limit")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= DAILY_LIMIT_MAX:
        raise ConfigProblem(f"daily_limit must be a whole number between 1 and {DAILY_LIMIT_MAX}")
    return value


def parse(config: Mapping[str, Any]) -> SendingConfig:
    """The sending side of ``config``; raises ConfigProblem on the first bad value."""
    from_email = _text(config, "from_email")
    if from_email is not None and address_problem(Channel.EMAIL, from_email) is not None:
        raise ConfigProblem("from_email must be an e-mail address")
    zone = _zone(config)
    return SendingConfig(
        providers=_providers(config),
        from_email=from_email,
        from_name=_text(config, "from_name"),
        message_stream=_text(config, "message_stream") or "outbound",
        agents=_agents(config),
        lemlist_campaign_id=_text(config, "lemlist_campaign_id"),
        window=_window(config, zone),
        zone=zone or ZoneInfo("UTC"),
        daily_limit=_daily_limit(config),
    )


def missing_for_start(
    config: SendingConfig, channels: Iterable[Channel], actions: Iterable[LinkedInAction]
) -> list[str]:
    """What the providers of the used ``channels`` (and LinkedIn ``actions``) still lack."""
    missing = []
    used = set(channels)
    for channel in sorted(used):
        provider = config.provider(channel)
        if provider is Provider.POSTMARK and config.from_email is None:
            missing.append("from_email (Postmark needs a sender address)")
        if provider is Provider.LEMLIST and config.lemlist_campaign_id is None:
            missing.append("lemlist_campaign_id (the lemlist campaign to add leads to)")
        if provider is Provider.PHANTOMBUSTER:
            for action in sorted(set(actions)):
                if action not in config.agents:
                    missing.append(f"phantombuster_agents.{action.value} (the agent that runs it)")
    return list(dict.fromkeys(missing))
