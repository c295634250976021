"""The demo data, seeded into the test database before a read test."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette

from app.seed import seed


@pytest.fixture
async def seeded(app: Starlette) -> Starlette:
    async with app.state.sessionmaker.begin() as session:
        assert await seed(session) is True
    return app
