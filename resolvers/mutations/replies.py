"""classifyReply: a thin call into app.services.replies."""

from __future__ import annotations

from datetime import datetime

from app.domain.enums import ReplySentiment
from app.services.replies import Classified, classify_reply
from resolvers.context import Context
from resolvers.mutations.common import Outcome, run_mutation


async def classify(
    context: Context, event_id: str, sentiment: ReplySentiment, return_date: datetime | None
) -> Outcome[Classified]:
    settings = context.settings
    return await run_mutation(
        context,
        lambda s: classify_reply(
            s,
            event_id,
            ReplySentiment(sentiment),
            return_date,
            context.principal.name,
            out_of_office_days=settings.reply_out_of_office_days,
            return_max_days=settings.reply_return_max_days,
        ),
        arguments=frozenset({"event_id", "sentiment", "return_date"}),
    )
