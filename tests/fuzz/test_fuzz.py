"""Schemathesis against the running server: the GraphQL schema, then the webhooks' OpenAPI.

Each test sends ``CAMPAIGN_FUZZ_EXAMPLES`` (500) generated requests, valid and invalid by the
schema, with working credentials, and asserts that none gets a 5xx, a masked internal error
or a body with a stack trace or SQL (tests/fuzz/harness.py). The Hypothesis seed is random,
printed (shown with a failure), and replayed with ``CAMPAIGN_FUZZ_SEED=<seed>``; Hypothesis
also prints the failing example's blob.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.graphql import nodes

from tests.fuzz.conftest import LiveServer
from tests.fuzz.harness import run_fuzz
from tests.fuzz.strategies import hostile_time, utf8_only

# Times across the whole range and past its ends, with any offset, wherever the schemas say
# DateTime / date-time (schemathesis' own draw only UTC times, which never overflow).
schemathesis.graphql.scalar("DateTime", utf8_only(hostile_time()).map(nodes.String))
schemathesis.openapi.format("date-time", utf8_only(hostile_time()))


def both_modes(schema: Any) -> st.SearchStrategy[Any]:
    return st.one_of(
        schema.as_strategy(generation_mode=GenerationMode.POSITIVE),
        schema.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )


def test_graphql_fuzz(live_server: LiveServer) -> None:
    headers = {"authorization": f"Bearer {live_server.api_key}"}
    schema = schemathesis.graphql.from_url(f"{live_server.url}/graphql", headers=headers)

    def send(case: Any) -> Any:
        return case.call(headers=headers, timeout=30)

    run_fuzz("graphql", both_modes(schema), send)


def test_webhook_openapi_fuzz(live_server: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{live_server.url}/webhooks/openapi.json")

    def send(case: Any) -> Any:
        headers, params = live_server.credentials(case.path)
        return case.call(base_url=live_server.url, headers=headers, params=params, timeout=30)

    run_fuzz("webhooks", both_modes(schema), send)
