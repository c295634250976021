"""Schemathesis against the running server: the GraphQL schema, then the webhooks' OpenAPI.

Each test sends ``EXAMPLES`` generated requests, valid and invalid by the schema, with working
credentials, and asserts that none gets a 5xx or a body with a stack trace or SQL. The
Hypothesis seed is random, printed (shown with a failure), and replayed with
``CAMPAIGN_FUZZ_SEED=<seed>``; Hypothesis also prints the failing example's blob.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.fuzz.conftest import LiveServer
from tests.leaks import leaks

EXAMPLES = 500


def fuzz_seed() -> int:
    configured = os.environ.get("CAMPAIGN_FUZZ_SEED", "").strip()
    return int(configured) if configured else random.randrange(2**32)


def run_fuzz(name: str, strategy: st.SearchStrategy[Any], send: Callable[[Any], Any]) -> None:
    seed = fuzz_seed()
    print(f"{name}: hypothesis seed {seed} (replay with CAMPAIGN_FUZZ_SEED={seed})")
    statuses: dict[int, int] = {}

    @hypothesis.seed(seed)
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        print_blob=True,
        database=None,
        phases=[hypothesis.Phase.generate, hypothesis.Phase.shrink],
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        response = send(case)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        body = response.content.decode("utf-8", "replace")
        assert response.status_code < 500, f"{response.status_code}: {body[:500]}"
        assert leaks(body) == [], body[:500]

    check()
    print(f"{name}: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")
    assert sum(statuses.values()) >= EXAMPLES


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
