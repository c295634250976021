"""Each instance's sending figures, for every instance of a request in one statement."""

from __future__ import annotations

from collections.abc import Sequence

from aiodataloader import DataLoader

from app.services.sending.operations import SENDING_FIGURES, SendingFigures
from resolvers.loaders.database import RequestDatabase
from resolvers.loaders.sql import typed

_FIGURES = typed(SENDING_FIGURES)


class SendingByInstanceLoader(DataLoader):  # type: ignore[misc]
    def __init__(self, db: RequestDatabase) -> None:
        super().__init__()
        self._db = db

    async def batch_load_fn(self, keys: Sequence[str]) -> list[SendingFigures]:
        rows = await self._db.fetch(_FIGURES, {"ids": list(keys)})
        found = {
            row.instance_id: SendingFigures(
                due_now=row.due_now,
                in_flight=row.in_flight,
                retrying=row.retrying,
                failed=row.failed,
                unknown=row.unknown,
                sent_today=row.sent_today,
                next_due_at=row.next_due_at,
            )
            for row in rows
        }
        return [found.get(key, SendingFigures()) for key in keys]
