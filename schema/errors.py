"""UserError: a rule the request broke, reported in the payload (not as a GraphQL error)."""

from __future__ import annotations

import strawberry

from schema.types.enums import ErrorCode


@strawberry.type
class UserError:
    field: list[str] = strawberry.field(
        description=(
            'Path to the input field at fault, e.g. ["input", "body"]; empty when the error is'
            " not about one field."
        )
    )
    code: ErrorCode
    message: str
