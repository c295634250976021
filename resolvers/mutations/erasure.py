"""eraseContact: a thin call into the erasure service."""

from __future__ import annotations

from app.services.erasure import Erasure, erase_contact
from resolvers.context import Context
from resolvers.mutations.common import Outcome, run_mutation


async def erase(context: Context, contact_id: str) -> Outcome[Erasure]:
    return await run_mutation(
        context,
        lambda s: erase_contact(s, contact_id, context.principal.name),
        arguments=frozenset({"contact_id"}),
    )
