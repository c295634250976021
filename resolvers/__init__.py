"""Thin resolvers: decode ids, call app.services, turn DomainError into payload errors."""
