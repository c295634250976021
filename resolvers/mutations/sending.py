"""Sending mutations: thin calls into the sending operations and the suppression list."""

from __future__ import annotations

import uuid
from typing import Any

from app.domain.enums import Channel, SuppressionReason
from app.services.sending.operations import retry_dispatch
from app.services.suppression import add_suppression, remove_suppression
from resolvers.context import Context
from resolvers.mutations.common import Outcome, run_mutation


async def retry(context: Context, dispatch_id: str) -> Outcome[uuid.UUID]:
    return await run_mutation(context, lambda s: retry_dispatch(s, dispatch_id))


async def add(context: Context, data: Any) -> Outcome[uuid.UUID]:
    channel, reason = Channel(data.channel.value), SuppressionReason(data.reason.value)
    return await run_mutation(
        context,
        lambda s: add_suppression(s, channel, data.address, reason, context.principal.name),
        arguments=frozenset(),
    )


async def remove(context: Context, channel: Any, address: str) -> Outcome[bool]:
    return await run_mutation(
        context,
        lambda s: remove_suppression(s, Channel(channel.value), address, context.principal.name),
        arguments=frozenset({"channel", "address"}),
    )
