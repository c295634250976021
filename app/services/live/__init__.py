"""Live updates: the replayable activity stream of each instance, and the per-process hub that
fans each announced change out to the subscribers of that instance (no GraphQL here)."""
