"""The example operations in ``examples/``: the one copy of the frontend's main documents that
the tests, the benchmarks and GraphiQL users share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from graphql import OperationDefinitionNode, parse

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
VARIABLES = EXAMPLES / "variables"


def example(file_name: str) -> str:
    """The document stored in ``examples/<file_name>``."""
    return (EXAMPLES / file_name).read_text(encoding="utf-8")


def operations() -> dict[str, tuple[str, str]]:
    """Every named operation of every example: name -> (file name, query or mutation)."""
    found: dict[str, tuple[str, str]] = {}
    for path in sorted(EXAMPLES.glob("*.graphql")):
        for definition in parse(path.read_text(encoding="utf-8")).definitions:
            if isinstance(definition, OperationDefinitionNode):
                assert definition.name is not None, f"{path.name}: name every operation"
                name = definition.name.value
                assert name not in found, f"operation {name} is defined twice"
                found[name] = (path.name, definition.operation.value)
    return found


def variables(operation: str) -> dict[str, Any]:
    """The variables stored for ``operation`` in ``examples/variables/``: ids of the seed's rows."""
    path = VARIABLES / f"{operation}.json"
    if not path.exists():
        return {}
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded
