"""The one error type domain operations raise; resolvers turn it into payload errors."""

from __future__ import annotations

from collections.abc import Sequence

from app.domain.enums import ErrorCode


class DomainError(Exception):
    """A rule the request broke: a stable code, the input path at fault, and a human message."""

    def __init__(self, code: ErrorCode, message: str, field: Sequence[str] = ()) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field: tuple[str, ...] = tuple(field)


class DomainErrors(Exception):
    """Several rule violations found together, so a client can fix them all at once."""

    def __init__(self, errors: Sequence[DomainError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors: tuple[DomainError, ...] = tuple(errors)
