"""Campaign figures: counters as metrics, and the rates of domain.md over them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from app.domain.counters import INSTANCE_COUNTERS
from app.domain.enums import NEGATIVE_SENTIMENTS, POSITIVE_SENTIMENTS, EventType, ReplySentiment


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


def _sentiments_sql(sentiments: frozenset[ReplySentiment]) -> str:
    return ", ".join(f"'{s.value}'" for s in sorted(sentiments))


POSITIVE_REPLY_SQL = (
    f"e.event_type = '{EventType.REPLIED.value}'"
    f" AND e.sentiment IN ({_sentiments_sql(POSITIVE_SENTIMENTS)})"
)
NEGATIVE_REPLY_SQL = (
    f"e.event_type = '{EventType.REPLIED.value}'"
    f" AND e.sentiment IN ({_sentiments_sql(NEGATIVE_SENTIMENTS)})"
)
"""SQL conditions over a stored event ``e``: a reply classified positive, or negative."""


@dataclass(frozen=True, slots=True)
class ReplySentimentFigures:
    """Replies by sentiment, counted as the other outcomes are (once per enrollment, channel
    and step: a step's reply outcome is positive when one of its replies is), with their
    rates over the replies of the same scope. Computed on read from the replies' current
    sentiment, since a classification can change; they are not stored counters."""

    positive: int = 0
    negative: int = 0
    replied: int = 0

    def __add__(self, other: ReplySentimentFigures) -> ReplySentimentFigures:
        return ReplySentimentFigures(
            self.positive + other.positive,
            self.negative + other.negative,
            self.replied + other.replied,
        )

    @property
    def positive_rate(self) -> float:
        return _ratio(self.positive, self.replied)

    @property
    def negative_rate(self) -> float:
        return _ratio(self.negative, self.replied)
