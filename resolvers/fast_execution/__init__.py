"""A faster execution path for query operations; see executor.py for where it hands over.

It reaches into internals that neither library promises to keep: graphql-core's
``graphql.execution.collect_fields`` and executor attributes (``async_helpers`` among them),
Strawberry's private ``_strawberry_schema``, ``_is_default`` and ``Info(_raw_info=...)``.
pyproject.toml pins both libraries exactly for that reason. Before an upgrade, the guard is
the differential test: tests/fast_execution (through tests/differential.py) runs every query
of the suite on this path and on Strawberry's standard executor and requires byte-identical
responses; tests/test_private_apis.py fails first, and more plainly, when one of those
internals moves.
"""

from resolvers.fast_execution.executor import FastExecutor, on_fallback

__all__ = ["FastExecutor", "on_fallback"]
