"""The libraries' internals the service relies on are still there, with the shape it expects.

pyproject.toml pins Strawberry, graphql-core and uvicorn exactly because of them.
After an upgrade these checks say plainly which internal moved; the behaviour built on them
is tested elsewhere (tests/fast_execution with tests/differential.py,
tests/graphql/test_query_limits.py, and the worker-socket tests for uvicorn's Config and
Multiprocess supervisor).
"""

from __future__ import annotations

import inspect
import random
import tomllib
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLSyntaxError, parse
from graphql.execution import collect_fields, values
from graphql.language.parser import Parser
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.arguments import convert_arguments

from resolvers.fast_execution import FastExecutor
from resolvers.fast_execution.plan import STRAWBERRY_DEFINITION, direct_call
from schema import build_schema
from schema.build import graphql_core_schema
from schema.extensions.limits import exceeds_token_limit

ROOT = Path(__file__).resolve().parent.parent
PINNED = ("strawberry-graphql", "graphql-core", "uvicorn")


def parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_the_libraries_are_pinned_to_the_installed_versions() -> None:
    """The checks below hold for these versions: a loosened pin would let others in."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {d.split("==")[0].split("[")[0]: d.split("==")[1] for d in dependencies if "==" in d}
    assert {name: pins.get(name) for name in PINNED} == {name: version(name) for name in PINNED}


def test_graphql_core_memoizes_subfields_per_executor_in_a_dict() -> None:
    """resolvers/shared_events.py gives each subscription event a memo of its own."""
    schema = graphql_core_schema(build_schema())
    executor = StrawberryGraphQLCoreExecutionContext.build(
        schema, parse('subscription { instanceStatus(instanceId: "x") { id } }')
    )
    assert isinstance(executor, StrawberryGraphQLCoreExecutionContext)
    event = executor.build_per_event_executor(None)
    assert event._relevant_sub_fields is executor._relevant_sub_fields == {}
    assert "_relevant_sub_fields" in inspect.getsource(type(executor).collect_subfields)


def test_graphql_core_field_collection_and_argument_values() -> None:
    """resolvers/fast_execution/plan.py and executor.py call these positionally."""
    assert parameters(collect_fields.collect_fields)[:6] == [
        "schema",
        "fragments",
        "variable_values",
        "runtime_type",
        "operation",
        "hide_suggestions",
    ]
    assert parameters(collect_fields.collect_subfields)[:7] == [
        "schema",
        "fragments",
        "variable_values",
        "operation",
        "return_type",
        "field_details_list",
        "hide_suggestions",
    ]
    assert collect_fields.FieldDetails._fields == (
        "node",
        "defer_usage",
        "fragment_variable_values",
    )
    assert {"grouped_field_set", "new_defer_usages"} <= set(collect_fields.CollectedFields._fields)
    assert "coerced" in values.VariableValues._fields
    assert parameters(values.get_argument_values) == [
        "type_def",
        "node",
        "variable_values",
        "fragment_variable_values",
        "hide_suggestions",
    ]


def test_the_executor_strawberry_builds_has_what_the_fast_path_reads() -> None:
    schema = build_schema(fast_execution=True)
    executor = FastExecutor.build(graphql_core_schema(schema), parse("{ __typename }"))
    assert isinstance(executor, StrawberryGraphQLCoreExecutionContext)
    assert parameters(executor.execute_operation) == ["serially"]
    assert parameters(executor.build_resolve_info) == [
        "field_def",
        "field_nodes",
        "parent_type",
        "path",
    ]
    assert parameters(executor.build_response) == ["data"]
    assert callable(executor.collected_errors.add)
    assert isinstance(executor.variable_values, values.VariableValues)
    for attribute in (
        "operation",
        "fragments",
        "fragment_definitions",
        "middleware_manager",
        "hide_suggestions",
        "field_resolver",
        "root_value",
        "context_value",
        "is_awaitable",
    ):
        assert hasattr(executor, attribute), attribute
    # The helpers the fast path re-makes, held weakly, once an operation is over.
    helpers = executor.async_helpers
    assert all(inspect.ismethod(h) and h.__self__ is executor for h in helpers), helpers


def test_strawberry_private_attributes_of_the_fast_path() -> None:
    schema = build_schema(fast_execution=True)
    core = graphql_core_schema(schema)
    assert core._strawberry_schema is schema  # type: ignore[attr-defined]
    assert isinstance(schema.exception_handlers, tuple)
    assert schema.schema_converter.scalar_registry is not None
    assert parameters(schema.config.info_class) == ["_raw_info", "_field"]
    assert parameters(convert_arguments)[:2] == ["value", "arguments"]
    assert {"scalar_registry", "config", "info"} <= set(parameters(convert_arguments))

    template = core.type_map["CampaignTemplate"]
    plain = template.fields["name"]  # type: ignore[attr-defined]
    assert plain.resolve._is_default is True
    assert plain.extensions[STRAWBERRY_DEFINITION].default_resolver is getattr
    paged = template.fields["instances"]  # type: ignore[attr-defined]
    assert not getattr(paged.resolve, "_is_default", False)
    call = direct_call(paged.extensions[STRAWBERRY_DEFINITION], schema.exception_handlers)
    assert call is not None
    assert (call.passes_self, call.info_parameter) == (True, "info")


def test_graphql_core_parser_takes_a_lexer_and_counts_tokens() -> None:
    """schema/extensions/limits.py parses again over its own lexer to read the counts."""
    assert {"max_tokens", "lexer"} <= set(parameters(Parser))
    parser = Parser("{ a # comment\n b }", max_tokens=10)
    parser.parse_document()
    assert parser.token_count == 5


@pytest.mark.parametrize("seed", range(3))
def test_the_token_limit_signal_agrees_with_graphql_core(seed: int) -> None:
    """graphql-core says why it refused only in its message: read here, as the oracle, on
    random documents, some invalid, some padded with comments."""
    pieces = ("{", "}", "a", "b(x: 1)", "# c\n", '"s"', "...F", "fragment F on T { a }", "?")
    rng = random.Random(seed)
    refused = 0
    for _ in range(3000):
        document = "{ a " + " ".join(rng.choice(pieces) for _ in range(rng.randrange(40)))
        limit = rng.randrange(1, 40)
        try:
            parse(document, max_tokens=limit)
        except GraphQLSyntaxError as error:
            refused += 1
            by_message = f"Document contains more than {limit} tokens." in error.message
            assert exceeds_token_limit(document, limit) is by_message, (document, limit)
    assert refused > 1000


async def test_uvicorn_httptools_protocol_internals_the_connection_guard_uses() -> None:
    """app/web/http_protocol.py subclasses uvicorn's httptools protocol: it overrides these
    methods, calls them through super(), and reads and sets these attributes of the protocol
    and of its request-response cycle. tests/test_http_limits.py tests the behaviour."""
    import asyncio
    import logging

    from uvicorn import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
    from uvicorn.server import ServerState

    from app.web.http_protocol import GuardedHttpProtocol

    assert GuardedHttpProtocol.__mro__[1] is HttpToolsProtocol
    overridden = {
        "connection_made": ["transport"],
        "connection_lost": ["exc"],
        "data_received": ["data"],
        "on_message_begin": [],
        "on_headers_complete": [],
        "on_message_complete": [],
    }
    for name, arguments in overridden.items():
        assert parameters(getattr(HttpToolsProtocol, name))[1:] == arguments, name
    assert parameters(HttpToolsProtocol.__init__)[1:] == [
        "config",
        "server_state",
        "app_state",
        "_loop",
    ]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    state = ServerState()
    protocol = HttpToolsProtocol(
        config=Config(app, log_config=None),
        server_state=state,
        app_state={},
        _loop=asyncio.get_running_loop(),
    )
    assert protocol.connections is state.connections
    assert protocol.cycle is None
    assert callable(protocol.app)
    assert isinstance(protocol.loop, asyncio.AbstractEventLoop)
    protocol.on_message_begin()  # the head being parsed: its target and its header fields
    protocol.on_url(b"/graphql")
    protocol.on_header(b"Host", b"example.com")
    assert (protocol.url, protocol.headers) == (b"/graphql", [(b"host", b"example.com")])

    cycle = RequestResponseCycle(
        scope={},  # type: ignore[typeddict-item]
        transport=None,  # type: ignore[arg-type]
        flow=None,  # type: ignore[arg-type]
        logger=logging.getLogger("test"),
        access_logger=logging.getLogger("test"),
        access_log=False,
        default_headers=[],
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=True,
        on_response=lambda: None,
    )
    assert (cycle.response_started, cycle.response_complete, cycle.disconnected) == (
        False,
        False,
        False,
    )
    assert isinstance(cycle.message_event, asyncio.Event)
