"""The GraphQL shape of the service: types, inputs and payloads bound to resolvers; no SQL."""

from schema.build import build_schema

__all__ = ["build_schema"]
