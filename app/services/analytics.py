"""Campaign figures: counters as metrics, and the rates of domain.md over them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from app.domain.counters import INSTANCE_COUNTERS


@dataclass(frozen=True, slots=True)
class Metrics:
    """One field per instance counter of the vocabulary, in its order (checked below), spelled
    out so that the rates read them as typed attributes."""

    enrolled: int = 0
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    replied: int = 0
    bounced: int = 0
    unsubscribed: int = 0

    def __add__(self, other: Metrics) -> Metrics:
        return Metrics(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


if tuple(f.name for f in fields(Metrics)) != INSTANCE_COUNTERS:
    raise TypeError(f"Metrics must have one field per counter, in order: {INSTANCE_COUNTERS}")


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


@dataclass(frozen=True, slots=True)
class Rates:
    delivery_rate: float
    open_rate: float
    click_rate: float
    reply_rate: float
    bounce_rate: float
    unsubscribe_rate: float

    @classmethod
    def of(cls, m: Metrics) -> Rates:
        """Each rate is 0 when its denominator is 0."""
        return cls(
            delivery_rate=_ratio(m.delivered, m.sent),
            open_rate=_ratio(m.opened, m.delivered),
            click_rate=_ratio(m.clicked, m.delivered),
            reply_rate=_ratio(m.replied, m.sent),
            bounce_rate=_ratio(m.bounced, m.sent),
            unsubscribe_rate=_ratio(m.unsubscribed, m.delivered),
        )


def total(metrics: Iterable[Metrics]) -> Metrics:
    result = Metrics()
    for m in metrics:
        result = result + m
    return result
