"""A faster execution path for query operations; see executor.py for where it hands over."""

from resolvers.fast_execution.executor import FastExecutor, on_fallback

__all__ = ["FastExecutor", "on_fallback"]
