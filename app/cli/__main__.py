"""``python -m app.cli``, the same as ``campaign-api`` (``dev`` starts its sender this way)."""

from app.cli import main

raise SystemExit(main())
