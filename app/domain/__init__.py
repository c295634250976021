"""Plain domain vocabulary: enums, limits and the DomainError hierarchy."""

from app.domain.enums import (
    Channel,
    EnrollmentStatus,
    ErrorCode,
    EventType,
    InstanceStatus,
    LinkedInAction,
    PathType,
    Provider,
    Scope,
    TemplateType,
)
from app.domain.errors import DomainError, DomainErrors

__all__ = [
    "Channel",
    "DomainError",
    "DomainErrors",
    "EnrollmentStatus",
    "ErrorCode",
    "EventType",
    "InstanceStatus",
    "LinkedInAction",
    "PathType",
    "Provider",
    "Scope",
    "TemplateType",
]
