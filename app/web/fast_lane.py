"""POSTs to the webhook endpoints, reached without Starlette's middlewares and router.

Providers call these endpoints thousands of times a second, and each of Starlette's layers
(ServerErrorMiddleware, ExceptionMiddleware, the router, the route) costs every request a
coroutine, and most a ``send`` wrapper too. The endpoints need none of them: they answer their
own refusals, and an unexpected error reaches the server, which answers the same bare 500 that
ServerErrorMiddleware would. They keep the request envelope (request id, access line, metrics,
the 503 for a lost database). Every other request takes the full stack.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send


class FastLane:
    def __init__(
        self, app: ASGIApp, routes: Sequence[Route], envelope: Callable[[ASGIApp], ASGIApp]
    ) -> None:
        self.app = app
        self._lanes = {
            route.path: (route, envelope(route.app))
            for route in routes
            if "POST" in (route.methods or ())
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Under a root path, the router's path arithmetic applies: the full stack handles it.
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            lane = self._lanes.get(scope["path"])
            if lane is not None:
                route, app = lane
                scope["route"] = route  # what the router would have said, for the access line
                await app(scope, receive, send)
                return
        await self.app(scope, receive, send)


class FastLaneStarlette(Starlette):
    """A Starlette application whose POSTs to ``fast_routes`` take a ``FastLane`` wrapped in
    ``envelope`` only. The routes stay in ``routes`` too, for their other methods (a 405)."""

    def __init__(
        self,
        *,
        fast_routes: Sequence[Route],
        envelope: Callable[[ASGIApp], ASGIApp],
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self._fast_routes = fast_routes
        self._envelope = envelope

    def build_middleware_stack(self) -> ASGIApp:
        return FastLane(super().build_middleware_stack(), self._fast_routes, self._envelope)
