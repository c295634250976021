"""Execution errors caused by an unreachable database make the response a 503.

GraphQL collects resolver exceptions into its error list (and masks them); a request that
failed only because PostgreSQL was away should instead tell the client to retry later.
"""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from app.db.errors import is_database_unavailable
from app.db.outage import note_unavailable


class ReportDatabaseOutage(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        yield
        for error in getattr(self.execution_context.result, "errors", None) or ():
            original = error.original_error
            if original is not None and is_database_unavailable(original):
                note_unavailable(original)
                return
