"""Self-hosted GraphiQL under a strict Content-Security-Policy.

Every asset comes from the service itself (the server has no internet access to reach
unpkg.com; see static/vendor/graphiql/README.md). The page carries no inline script or style:
its code and styles are files (static/graphiql/), and the fonts and images the GraphiQL bundle's
stylesheet inlines as ``data:`` URLs are served as files of their own, named by their content
hash, from a copy of that stylesheet that points at them (the vendored file stays as published).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from app.web.errors import json_error

VENDOR_DIR = Path(__file__).resolve().parent / "static" / "vendor" / "graphiql"
VENDOR = "/static/vendor/graphiql"
PAGE = "/static/graphiql"
ASSETS = "/graphiql-assets"
"""Where the bundle's stylesheet and what it inlined are served (``asset_endpoint``)."""

_DATA_URL = re.compile(
    r"url\(\s*['\"]?data:([a-z]+/[a-z0-9.+-]+);base64,([A-Za-z0-9+/=]+)['\"]?\s*\)"
)
_EXTENSIONS = {"font/woff2": "woff2", "font/woff": "woff", "image/png": "png"}
_NONCE = "__CSP_NONCE__"


@dataclass(frozen=True, slots=True)
class Asset:
    content: bytes
    media_type: str


@functools.cache
def bundle_assets() -> dict[str, Asset]:
    """The bundle's stylesheet without ``data:`` URLs, and the files they held, by name."""
    assets: dict[str, Asset] = {}

    def to_file(match: re.Match[str]) -> str:
        media_type, content = match[1], base64.b64decode(match[2])
        name = f"{hashlib.sha256(content).hexdigest()[:20]}.{_EXTENSIONS[media_type]}"
        assets[name] = Asset(content, media_type)
        return f"url({ASSETS}/{name})"

    css = _DATA_URL.sub(to_file, (VENDOR_DIR / "graphiql.min.css").read_text()).encode()
    assets[f"graphiql-{hashlib.sha256(css).hexdigest()[:20]}.css"] = Asset(css, "text/css")
    return assets


def _stylesheet_name() -> str:
    return next(name for name in bundle_assets() if name.endswith(".css"))


_TEMPLATE = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>campaign-api GraphiQL</title>
    <link rel="icon" href="{page}/favicon.svg" />
    <link rel="stylesheet" href="{assets}/{stylesheet}" />
    <link rel="stylesheet" href="{vendor}/plugin-explorer.css" />
    <link rel="stylesheet" href="{page}/page.css" />
  </head>

  <body>
    <div id="auth-help">
      <strong>Authentication:</strong> every operation needs an API key. Open the
      <strong>Headers</strong> tab below the query editor and enter
      <code>{{"Authorization": "Bearer cak_..."}}</code>, with your whole key (it starts with
      <code>cak_</code>; create one with <code>campaign-api api-key create</code>) in place of
      <code>cak_...</code>. Then run the query with the &#9654; button or Ctrl-Enter. The key is
      kept for this tab only, unless you tick
      <label><input type="checkbox" id="remember-key" /> remember it in this browser</label>.
    </div>
    <div id="graphiql" class="graphiql-container">Loading...</div>
    <script src="{vendor}/react.production.min.js"></script>
    <script src="{vendor}/react-dom.production.min.js"></script>
    <script src="{vendor}/graphiql.min.js"></script>
    <script src="{vendor}/plugin-explorer.umd.js"></script>
    <script src="{vendor}/graphql-ws.min.js"></script>
    <script src="{page}/page.js" nonce="{nonce}"></script>
  </body>
</html>
"""


@functools.cache
def _page() -> str:
    return _TEMPLATE.format(
        page=PAGE, vendor=VENDOR, assets=ASSETS, stylesheet=_stylesheet_name(), nonce=_NONCE
    )


def content_security_policy(nonce: str) -> str:
    """Only this service's scripts, styles, fonts and endpoint; never framed. The style nonce
    is for the <style> elements GraphiQL's dialogs create at run time (see page.js); ``data:``
    images are for CodeMirror's drag image, the one data: URL left in the bundle."""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            f"style-src 'self' 'nonce-{nonce}'",
            "font-src 'self'",
            "img-src 'self' data:",
            # 'self' covers ws: and wss: to the same host (CSP Level 3): subscriptions.
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def graphiql_page() -> HTMLResponse:
    """The page, with a fresh style nonce and its Content-Security-Policy."""
    nonce = secrets.token_urlsafe(18)
    return HTMLResponse(
        _page().replace(_NONCE, nonce),
        headers={
            "Content-Security-Policy": content_security_policy(nonce),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


async def asset_endpoint(request: Request) -> Response:
    """``/graphiql-assets/NAME``: named by content hash, so cached for good."""
    asset = bundle_assets().get(request.path_params["name"])
    if asset is None:
        return json_error(404, "NOT_FOUND", "no such GraphiQL asset")
    return Response(
        asset.content,
        media_type=asset.media_type,
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )
