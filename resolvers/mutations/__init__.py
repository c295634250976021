"""Mutation resolvers, one module per domain: each is one transaction around a service call."""
