"""The committed SDL is current, and it holds the whole contract the frontend relies on."""

from __future__ import annotations

from pathlib import Path

from graphql import build_schema as parse_sdl
from graphql import find_breaking_changes

from schema import build_schema

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = Path(__file__).resolve().parent / "contract" / "api.graphql"


def test_committed_schema_matches_the_export() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == build_schema().as_str() + "\n", (
        "schema.graphql is stale: run 'make schema' and commit it"
    )


def test_the_whole_contract_is_present() -> None:
    contract = parse_sdl(CONTRACT.read_text())
    ours = parse_sdl(build_schema().as_str())
    gaps = [f"{c.type.name}: {c.description}" for c in find_breaking_changes(contract, ours)]
    assert gaps == []
