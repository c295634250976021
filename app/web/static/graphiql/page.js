// The GraphiQL page's script (app/web/graphiql.py renders the page), a file of its own because
// the page's Content-Security-Policy runs no inline script. Adapted from strawberry-graphql
// 0.341's graphiql.html: subscriptions run over graphql-transport-ws (graphql-ws's client, which
// sends the key in connection_init: browsers cannot set headers on a WebSocket), the API key is
// kept in session storage unless the user asks to remember it, and the schema is fetched again
// whenever the key changes.
"use strict";

(function () {
  // The style-src nonce of this response, given to this script's own element: Radix dialogs
  // (in the GraphiQL bundle) add <style> elements at run time, and the bundle offers no way to
  // give them the nonce, so style elements created by script get it here. Scripts are 'self'
  // only, so this admits no style the page's own code did not make; markup cannot carry it.
  const nonce = document.currentScript.nonce;
  const createElement = Document.prototype.createElement;
  Document.prototype.createElement = function (tagName, options) {
    const element = createElement.call(this, tagName, options);
    if (nonce && String(tagName).toLowerCase() === "style") {
      element.nonce = nonce;
    }
    return element;
  };

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

  // Pre-filled content of the Headers editor until a key is entered.
  const DEFAULT_HEADERS = JSON.stringify({ Authorization: "Bearer " }, null, 2);
  const HEADERS_KEY = "campaign-api:headers";
  const REMEMBER_KEY = "campaign-api:remember-key";
  const REFETCH_AFTER_MS = 400;

  // --- where the headers (and so the key) are kept ------------------------------------------

  function remembering() {
    return localStorage.getItem(REMEMBER_KEY) === "true";
  }

  function storedHeaders() {
    return (remembering() ? localStorage : sessionStorage).getItem(HEADERS_KEY);
  }

  function storeHeaders(text) {
    const [keep, drop] = remembering()
      ? [localStorage, sessionStorage]
      : [sessionStorage, localStorage];
    keep.setItem(HEADERS_KEY, text);
    drop.removeItem(HEADERS_KEY);
  }

  const remember = document.getElementById("remember-key");
  remember.checked = remembering();
  remember.addEventListener("change", function () {
    const text = storedHeaders();
    if (remember.checked) {
      localStorage.setItem(REMEMBER_KEY, "true");
    } else {
      localStorage.removeItem(REMEMBER_KEY);
    }
    if (text !== null) {
      storeHeaders(text);
    }
  });

  // The credential the headers carry ("" when none): the schema depends on it.
  function credential(headersText) {
    let headers;
    try {
      headers = JSON.parse(headersText || "{}");
    } catch (error) {
      return "";
    }
    if (headers === null || typeof headers !== "object") {
      return "";
    }
    for (const [name, value] of Object.entries(headers)) {
      const lower = name.toLowerCase();
      if (typeof value !== "string") {
        continue;
      }
      if (lower === "authorization" && value.replace(/^bearer\s*/i, "").trim()) {
        return value.trim();
      }
      if (lower === "x-api-key" && value.trim()) {
        return value.trim();
      }
    }
    return "";
  }

  // --- the query in the address bar, to share it ---------------------------------------------

  const parameters = {};
  for (const entry of window.location.search.slice(1).split("&")) {
    const eq = entry.indexOf("=");
    if (eq >= 0) {
      parameters[decodeURIComponent(entry.slice(0, eq))] = decodeURIComponent(
        entry.slice(eq + 1),
      );
    }
  }

  function updateURL(data) {
    Object.assign(parameters, data);
    const newSearch =
      "?" +
      Object.keys(parameters)
        .filter((key) => Boolean(parameters[key]))
        .map((key) => encodeURIComponent(key) + "=" + encodeURIComponent(parameters[key]))
        .join("&");
    history.replaceState(null, null, newSearch);
  }

  const fetchURL = window.location.href.split("?")[0];
  const subscriptionURL = fetchURL.replace(/^http/, "ws");

  function GraphiQLWithExplorer() {
    const initialHeaders = storedHeaders();
    const [query, setQuery] = React.useState(parameters.q || EXAMPLE_QUERY);
    const [variables, setVariables] = React.useState(parameters.variables);
    const [headers, setHeaders] = React.useState(initialHeaders || undefined);
    const [key, setKey] = React.useState(credential(initialHeaders));
    const explorerPlugin = React.useMemo(() => GraphiQLPluginExplorer.explorerPlugin(), []);

    // A new fetcher when the key changes makes GraphiQL fetch the schema again, with the
    // headers then in the editor; without a key there is no schema to ask for.
    // Subscriptions go over a WebSocket whose connection_init carries the same key; the
    // client of a previous key is closed.
    const wsClient = React.useMemo(
      () =>
        graphqlWs.createClient({
          url: subscriptionURL,
          connectionParams: key
            ? { Authorization: /^bearer\s/i.test(key) ? key : "Bearer " + key }
            : {},
        }),
      [key],
    );
    React.useEffect(() => () => wsClient.dispose(), [wsClient]);
    const fetcher = React.useMemo(
      () => GraphiQL.createFetcher({ url: fetchURL, wsClient: wsClient }),
      [wsClient],
    );
    React.useEffect(() => {
      const timer = setTimeout(() => setKey(credential(headers)), REFETCH_AFTER_MS);
      return () => clearTimeout(timer);
    }, [headers]);

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
      storeHeaders(newHeaders);
    }

    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      schema: key ? undefined : null,
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
      // GraphiQL's own storage (localStorage) never holds the headers: the code above does.
      shouldPersistHeaders: false,
    });
  }

  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQLWithExplorer));
})();
