"""What every fuzz test shares: the seed (random, printed, replayable), the number of cases
(``CAMPAIGN_FUZZ_EXAMPLES``, 500 by default), and the checks every answer must pass."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Sequence
from typing import Any

import hypothesis
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from tests.leaks import leaks

DEFAULT_EXAMPLES = 500


def examples() -> int:
    """Cases per fuzz test: 500 keeps the suite's fuzzing near a minute; raise it for a long
    run (``CAMPAIGN_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/fuzz``)."""
    configured = os.environ.get("CAMPAIGN_FUZZ_EXAMPLES", "").strip()
    return int(configured) if configured else DEFAULT_EXAMPLES


def fuzz_seed() -> int:
    configured = os.environ.get("CAMPAIGN_FUZZ_SEED", "").strip()
    return int(configured) if configured else random.randrange(2**32)


def internal_errors(body: str) -> list[Any]:
    """GraphQL errors the service did not mean (masked as INTERNAL_SERVER_ERROR, HTTP 200)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return []
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    return [
        e
        for e in errors or []
        if isinstance(e, dict)
        and (e.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR"
    ]


def _check_all(
    strategy: st.SearchStrategy[Any],
    send: Callable[[Any], Any],
    cases: int,
    seed: int,
    statuses: dict[int, int],
) -> None:
    @hypothesis.seed(seed)
    @hypothesis.settings(
        max_examples=cases,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
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
        # A marker the request itself carried may be an honest echo ("'SELECT ' is not a
        # valid id"); schemathesis's generated values cannot be filtered as ours are.
        echoed = set(leaks(repr(case)))
        assert [marker for marker in leaks(body) if marker not in echoed] == [], body[:500]
        assert internal_errors(body) == [], body[:500]

    check()


def run_fuzz(
    name: str,
    strategy: st.SearchStrategy[Any] | Sequence[st.SearchStrategy[Any]],
    send: Callable[[Any], Any],
    cases: int = 0,
) -> dict[int, int]:
    """Send ``cases`` generated cases (``examples()`` by default); none may get a 5xx, a
    masked internal error, or a body with a stack trace or SQL. Given several strategies,
    ``cases`` goes to each in turn (Hypothesis would draw the first ones of a ``one_of`` far
    more often). Returns each status' count."""
    seed = fuzz_seed()
    cases = cases or examples()
    print(f"{name}: hypothesis seed {seed} (replay with CAMPAIGN_FUZZ_SEED={seed})")
    statuses: dict[int, int] = {}
    strategies = strategy if isinstance(strategy, Sequence) else [strategy]
    for each in strategies:
        _check_all(each, send, cases, seed, statuses)
    print(f"{name}: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")
    assert sum(statuses.values()) >= cases * len(strategies)
    return statuses
