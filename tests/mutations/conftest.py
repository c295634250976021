"""Mutation tests share one app per module; every table is still emptied after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette

from app.settings import Settings
from app.web.asgi import create_app


@pytest.fixture(scope="module")
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(autouse=True)
async def _empty_tables_after_each_test(clean_db: None) -> None:
    return None
