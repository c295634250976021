"""Scope checks: a key without the needed scope gets a GraphQL error coded FORBIDDEN."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

from app.domain.enums import Scope


class _RequireScope(BasePermission):
    scope: Scope
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return bool(info.context.principal.allows(self.scope))


class CanRead(_RequireScope):
    scope = Scope.READ
    message = "this API key lacks the 'read' scope"


class CanWrite(_RequireScope):
    scope = Scope.WRITE
    message = "this API key lacks the 'write' scope"


class CanAdmin(_RequireScope):
    scope = Scope.ADMIN
    message = "this API key lacks the 'admin' scope"
