"""An erasure's receipt, as an operator sees it: who, when, how much, and nothing of the
contact but the SHA-256 of its id."""

from __future__ import annotations

from datetime import datetime

import strawberry


@strawberry.type(
    description="The audit of a contact's erasure: it keeps no personal data of the contact."
)
class ContactErasure:
    contact_hash: str = strawberry.field(
        description="SHA-256 (hex) of the contact id: how the audit names the contact."
    )
    actor: str = strawberry.field(description="The API key (or CLI user) that erased it.")
    erased_at: datetime
    enrollments: int = strawberry.field(description="Enrollments whose personal data was erased.")
    events: int = strawberry.field(description="Events whose metadata was cleared.")
    dispatches: int = strawberry.field(
        description="Dispatches whose last error was cleared or whose queued touch was cancelled."
    )
    addresses: int = strawberry.field(
        description="Addresses kept only as hashed suppressions from now on."
    )
