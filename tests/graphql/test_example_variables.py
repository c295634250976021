"""Each example operation, with its variables file, works on a freshly seeded database: what a
newcomer pastes into GraphiQL (or curl) after `make run` answers without an error."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from graphql import OperationDefinitionNode, parse
from starlette.applications import Starlette

from testkit.examples import VARIABLES, example, operations, variables
from tests.graphql.test_examples import run

LIFECYCLE = {
    "StartInstance": ("startInstance", "ACTIVE"),
    "PauseInstance": ("pauseInstance", "PAUSED"),
    "ResumeInstance": ("resumeInstance", "ACTIVE"),
    "CompleteInstance": ("completeInstance", "COMPLETED"),
    "FailInstance": ("failInstance", "FAILED"),
}


def _declares_variables(name: str) -> bool:
    file_name, _ = operations()[name]
    for definition in parse(example(file_name)).definitions:
        if (
            isinstance(definition, OperationDefinitionNode)
            and definition.name is not None
            and definition.name.value == name
        ):
            return bool(definition.variable_definitions)
    raise AssertionError(f"{name} not found in {file_name}")


def test_every_operation_with_variables_has_a_file_and_no_file_is_stray() -> None:
    needing = {name for name in operations() if _declares_variables(name)}
    assert {path.stem for path in VARIABLES.glob("*.json")} == needing


@pytest.mark.parametrize("name", sorted(operations()))
async def test_the_example_runs_with_its_variables_on_the_seed(
    seeded: Starlette, client: httpx.AsyncClient, write_key: str, name: str
) -> None:
    given = variables(name)
    data = await run(client, write_key, name, given)
    assert data, name
    answer: dict[str, Any] = next(iter(data.values()))
    assert answer is not None, f"{name}: the seed has no row for {given}"
    assert answer.get("errors", []) == [], answer
    if name in LIFECYCLE:
        field, status = LIFECYCLE[name]
        instance = data[field]["instance"]
        assert (instance["id"], instance["status"]) == (given["id"], status)
    elif name == "CreateInstance":
        instance = data["createInstance"]["instance"]
        assert (instance["name"], instance["status"]) == (given["input"]["name"], "DRAFT")
        assert instance["template"]["id"] == given["input"]["templateId"]
    elif name == "BulkEnroll":
        payload = data["bulkEnroll"]
        assert (payload["enrolledCount"], payload["skipped"]) == (len(given["contacts"]), [])
        assert {e["contactId"] for e in payload["enrollments"]} == {
            c["contactId"] for c in given["contacts"]
        }
    elif name == "InstanceDetail":
        assert data["instance"]["id"] == given["id"]
