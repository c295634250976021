"""Domain operations: plain async functions taking a session; they flush, callers commit."""
