"""Who may be enrolled in an instance: a contact needs an address for each channel the template
sends on, a value for every variable its active steps use without a fallback, and no
suppressed address. A refused contact is reported with its reason; the others are enrolled."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import addresses
from app.domain.enums import Channel, SkipReason, TemplateType
from app.services.sending.render import required_variables
from app.services.sequence import used_channels

_STEP_TEXTS = text(
    """
    SELECT subject, body FROM email_steps
    WHERE template_id = :template_id AND is_active AND :email
    UNION ALL
    SELECT NULL, message FROM linkedin_steps
    WHERE template_id = :template_id AND is_active AND :linkedin
    """
)


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: SkipReason
    message: str
    field: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Audience:
    """The rules of one instance, read once per request."""

    channels: tuple[Channel, ...]
    variables: frozenset[str]

    def addresses(self, metadata: dict[str, Any]) -> list[tuple[Channel, str]]:
        """The contact's normalized address per channel (for the suppression check)."""
        found = []
        for channel in self.channels:
            raw = metadata.get(addresses.METADATA_KEY[channel])
            if isinstance(raw, str) and addresses.problem(channel, raw) is None:
                found.append((channel, addresses.normalize(channel, raw)))
        return found

    def refusal(self, metadata: dict[str, Any]) -> Refusal | None:
        """Why this contact cannot be enrolled here (suppression aside), or None."""
        for channel in self.channels:
            key = addresses.METADATA_KEY[channel]
            problem = addresses.problem(channel, metadata.get(key))
            if problem == "missing":
                return Refusal(
                    SkipReason.ADDRESS_MISSING,
                    f"metadata.{key} is required: the template sends on {channel.value}",
                    ("metadata", key),
                )
            if problem is not None:
                return Refusal(
                    SkipReason.ADDRESS_INVALID, f"metadata.{key} is {problem}", ("metadata", key)
                )
        missing = sorted(v for v in self.variables if not _has_value(metadata.get(v)))
        if missing:
            return Refusal(
                SkipReason.VARIABLE_MISSING,
                "the steps use "
                + ", ".join(f"{{{{{v}}}}}" for v in missing)
                + " without a fallback and metadata has no value for "
                + ("it" if len(missing) == 1 else "them"),
                ("metadata", missing[0]),
            )
        return None


def _has_value(value: Any) -> bool:
    if value is None or isinstance(value, dict | list):
        return False
    return bool(str(value).strip())


async def audience_of(
    session: AsyncSession, template_id: uuid.UUID, template_type: TemplateType
) -> Audience:
    channels = used_channels(template_type)
    rows = await session.execute(
        _STEP_TEXTS,
        {
            "template_id": template_id,
            "email": Channel.EMAIL in channels,
            "linkedin": Channel.LINKEDIN in channels,
        },
    )
    return Audience(
        channels, frozenset(required_variables(t for row in rows for t in (row[0], row[1])))
    )


async def suppressed(
    session: AsyncSession, wanted: Iterable[tuple[Channel, str]]
) -> set[tuple[Channel, str]]:
    """Which of the (channel, normalized address) pairs are suppressed, in clear or as the
    hash an erasure left: one statement."""
    pairs: Sequence[tuple[Channel, str]] = list(dict.fromkeys(wanted))
    if not pairs:
        return set()
    rows = await session.execute(
        text(
            "SELECT w.channel::text, w.address"
            " FROM unnest(CAST(:channels AS channel[]), CAST(:addresses AS text[]),"
            "             CAST(:hashes AS text[])) AS w(channel, address, address_sha256)"
            " WHERE EXISTS (SELECT 1 FROM suppressions s"
            "               WHERE s.channel = w.channel AND s.address = w.address)"
            "    OR EXISTS (SELECT 1 FROM hashed_suppressions h"
            "               WHERE h.channel = w.channel AND h.address_sha256 = w.address_sha256)"
        ),
        {
            "channels": [c.value for c, _ in pairs],
            "addresses": [a for _, a in pairs],
            "hashes": [addresses.address_hash(a) for _, a in pairs],
        },
    )
    return {(Channel(row[0]), row[1]) for row in rows}
