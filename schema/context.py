"""The context type resolvers receive (defined beside the resolvers that fill it)."""

from resolvers.context import Context

__all__ = ["Context"]
