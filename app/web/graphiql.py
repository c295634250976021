"""Self-hosted GraphiQL page, because the server has no internet access to reach unpkg.com."""

from __future__ import annotations

import functools
import html

# Adapted from strawberry-graphql 0.341 (strawberry/static/graphiql.html): every asset is
# loaded from our own static files (app/web/static/vendor/graphiql, see its README.md),
# subscriptions are off, and the page explains how to send the API key.
_PREFIX = "__GRAPHIQL_STATIC_PREFIX__"

_TEMPLATE = """<!doctype html>
<html>
  <head>
    <title>Strawberry GraphiQL</title>
    <link
      rel="icon"
      href="data:image/svg+xml,
        <svg xmlns=%22http://www.w3.org/2000/svg%22 viewBox=%220 0 100 100%22>
            <!-- Strawberry Emoji as a HTML Entity (hex)  -->
            <text y=%22.9em%22 font-size=%2280%22>&#x1f353;</text>
        </svg>"
    />
    <style>
      body {
        height: 100vh;
        margin: 0;
        width: 100%;
        overflow: hidden;
        display: flex;
        flex-direction: column;
      }

      #auth-help {
        flex: none;
        padding: 6px 12px;
        font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
        background: #fff8e1;
        color: #3d3d3d;
        border-bottom: 1px solid #e0c97a;
      }

      #auth-help code {
        font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
        background: #fdecb3;
        padding: 1px 4px;
        border-radius: 3px;
      }

      #graphiql {
        flex: 1;
        min-height: 0;
        display: flex;
      }

      .docExplorerHide {
        display: none;
      }

      .doc-explorer-contents {
        overflow-y: hidden !important;
      }

      .docExplorerWrap {
        width: unset !important;
        min-width: unset !important;
      }

      .graphiql-explorer-actions select {
        margin-left: 4px;
      }
    </style>

    <script src="__GRAPHIQL_STATIC_PREFIX__/react.production.min.js"></script>
    <script src="__GRAPHIQL_STATIC_PREFIX__/react-dom.production.min.js"></script>
    <script src="__GRAPHIQL_STATIC_PREFIX__/js.cookie.min.js"></script>
    <link rel="stylesheet" href="__GRAPHIQL_STATIC_PREFIX__/graphiql.min.css" />
    <link rel="stylesheet" href="__GRAPHIQL_STATIC_PREFIX__/plugin-explorer.css" />
  </head>

  <body>
    <div id="auth-help">
      <strong>Authentication:</strong> every operation needs an API key. Open the
      <strong>Headers</strong> tab below the query editor and enter
      <code>{"Authorization": "Bearer cak_..."}</code>, with your whole key (it starts with
      <code>cak_</code>; create one with <code>campaign-api api-key create</code>) in place of
      <code>cak_...</code>. Then run the query with the &#9654; button or Ctrl-Enter.
    </div>
    <div id="graphiql" class="graphiql-container">Loading...</div>
    <script src="__GRAPHIQL_STATIC_PREFIX__/graphiql.min.js"></script>
    <script src="__GRAPHIQL_STATIC_PREFIX__/plugin-explorer.umd.js"></script>
    <script>
      const EXAMPLE_QUERY = `# Welcome to GraphiQL 🍓
#
# GraphiQL is an in-browser tool for writing, validating, and
# testing GraphQL queries.
#
# Authentication: put your API key in the Headers tab (below) as
#
#     {"Authorization": "Bearer <your key>"}
#
# Type queries into this side of the screen, and you will see intelligent
# typeaheads aware of the current GraphQL type schema and live syntax and
# validation errors highlighted within the text.
#
# GraphQL queries typically start with a "{" character. Lines that starts
# with a # are ignored.
#
# An example GraphQL query might look like:
#
#     {
#       field(arg: "value") {
#         subField
#       }
#     }
#
# Keyboard shortcuts:
#
#       Run Query:  Ctrl-Enter (or press the play button above)
#
#   Auto Complete:  Ctrl-Space (or just start typing)
#
`;

      // Pre-filled content of the Headers editor (until the user saves their own).
      const DEFAULT_HEADERS = JSON.stringify({ Authorization: "Bearer " }, null, 2);

      // Parse URL parameters for sharing queries
      const parameters = {};

      for (const entry of window.location.search.slice(1).split("&")) {
        const eq = entry.indexOf("=");
        if (eq >= 0) {
          parameters[decodeURIComponent(entry.slice(0, eq))] =
            decodeURIComponent(entry.slice(eq + 1));
        }
      }

      function updateURL(data) {
        Object.assign(parameters, data);

        const newSearch =
          "?" +
          Object.keys(parameters)
            .filter(function (key) {
              return Boolean(parameters[key]);
            })
            .map(function (key) {
              return (
                encodeURIComponent(key) +
                "=" +
                encodeURIComponent(parameters[key])
              );
            })
            .join("&");
        history.replaceState(null, null, newSearch);
      }

      const fetchURL = window.location.href.split("?")[0];

      const defaultHeaders = {};
      const csrfToken = Cookies.get("csrftoken");

      if (csrfToken) {
        defaultHeaders["x-csrftoken"] = csrfToken;
      }

      // Subscriptions are disabled: plain HTTP fetcher, no websocket URL.
      const fetcher = GraphiQL.createFetcher({
        url: fetchURL,
        headers: defaultHeaders,
      });

      function GraphiQLWithExplorer() {
        const [query, setQuery] = React.useState(
          parameters.q || EXAMPLE_QUERY,
        );
        const [variables, setVariables] = React.useState(
          parameters.variables,
        );
        const [headers, setHeaders] = React.useState(parameters.headers);

        function onEditQuery(newQuery) {
          setQuery(newQuery);
          updateURL({ q: newQuery });
        }

        function onEditVariables(newVariables) {
          setVariables(newVariables);
          updateURL({ variables: newVariables });
        }

        function onEditHeaders(newHeaders) {
          setHeaders(newHeaders);
        }

        const explorerPlugin = GraphiQLPluginExplorer.explorerPlugin();

        return React.createElement(GraphiQL, {
          fetcher: fetcher,
          defaultEditorToolsVisibility: "headers",
          plugins: [explorerPlugin],
          query: query,
          variables: variables,
          headers: headers,
          defaultHeaders: DEFAULT_HEADERS,
          onEditQuery: onEditQuery,
          onEditVariables: onEditVariables,
          onEditHeaders: onEditHeaders,
          inputValueDeprecation: true,
          isHeadersEditorEnabled: true,
          shouldPersistHeaders: true,
        });
      }

      const root = ReactDOM.createRoot(document.getElementById("graphiql"));
      root.render(React.createElement(GraphiQLWithExplorer));
    </script>
  </body>
</html>
"""


@functools.cache
def render_graphiql_page(static_prefix: str = "/static/vendor/graphiql") -> str:
    """Return the GraphiQL HTML loading its assets from ``static_prefix`` (no CDN needed)."""
    prefix = html.escape(static_prefix.rstrip("/"), quote=True)
    return _TEMPLATE.replace(_PREFIX, prefix)
