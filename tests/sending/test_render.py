"""Personalization (``app.services.sending.render``): ``{{variable}}`` and
``{{variable|fallback}}`` filled from an enrollment's metadata, nothing else.

A placeholder names one metadata key: no attribute, index or method is ever followed, a value
is never rendered again, and every other use of ``{{`` or ``}}`` is refused as malformed, with
its position, before anything is substituted.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.services.sending.render import (
    MalformedPlaceholder,
    MissingVariable,
    Placeholder,
    placeholders,
    render,
    required_variables,
)

ADA = {"first_name": "Ada", "company": "Analytical Engines", "seats": 3, "vip": True}


# --- substitution -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hi {{first_name}}!", "Hi Ada!"),
        ("Hi {{ first_name }}!", "Hi Ada!"),
        ("Hi {{\tfirst_name\n}}!", "Hi Ada!"),
        ("{{first_name}} at {{company|your company}}", "Ada at Analytical Engines"),
        ("{{seats}} seats, vip: {{vip}}", "3 seats, vip: true"),
        ("{{first_name}}{{first_name}}", "AdaAda"),
        (
            "no placeholder at all, {single} braces stay",
            "no placeholder at all, {single} braces stay",
        ),
        ("", ""),
    ],
)
def test_values_replace_their_placeholders(template: str, expected: str) -> None:
    assert render(template, ADA) == expected


@pytest.mark.parametrize(
    "metadata",
    [{}, {"title": None}, {"title": ""}, {"title": "   "}, {"title": {"a": 1}}, {"title": [1]}],
    ids=["absent", "null", "empty", "blank", "object", "list"],
)
def test_the_fallback_stands_in_for_no_value(metadata: dict[str, Any]) -> None:
    assert render("Dear {{title|friend}},", metadata) == "Dear friend,"
    assert render("Dear {{ title | dear friend }},", metadata) == "Dear dear friend,"
    assert render("Dear{{title|}},", metadata) == "Dear,"  # an empty fallback is a fallback
    with pytest.raises(MissingVariable) as caught:
        render("Dear {{title}},", metadata)
    assert caught.value.name == "title"


def test_false_and_zero_are_values_not_missing() -> None:
    assert render("{{n|none}} {{b|none}}", {"n": 0, "b": False}) == "0 false"


def test_a_value_is_never_rendered_again() -> None:
    metadata = {"first_name": "{{secret}}", "company": "{{__class__}}"}
    assert render("{{first_name}} / {{company}}", metadata) == "{{secret}} / {{__class__}}"


def test_a_missing_variable_is_reported_before_any_text_is_returned() -> None:
    with pytest.raises(MissingVariable) as caught:
        render("{{first_name}} {{last_name}} {{company}}", ADA)
    assert caught.value.name == "last_name"
    assert "last_name" in str(caught.value)


# --- nothing is evaluated ---------------------------------------------------------------------

DUNDERS = ("__class__", "__dict__", "__init__", "__globals__", "__builtins__", "__len__")
METHODS = ("keys", "items", "get", "values", "copy", "pop", "clear")


@pytest.mark.parametrize("name", DUNDERS + METHODS)
def test_attribute_like_names_are_only_metadata_keys(name: str) -> None:
    """A name that is an attribute or method of the metadata's type reads the key of that
    name, like any other: absent, it is missing (or its fallback); present, its value."""
    metadata = {"first_name": "Ada"}
    with pytest.raises(MissingVariable):
        render(f"{{{{{name}}}}}", metadata)
    assert render(f"[{{{{{name}|safe}}}}]", metadata) == "[safe]"
    assert render(f"{{{{{name}}}}}", {name: "plain"}) == "plain"
    assert metadata == {"first_name": "Ada"}  # nothing was called on it


@pytest.mark.parametrize(
    "template",
    [
        "{{a.b}}",
        "{{first_name.upper}}",
        "{{__class__.__mro__}}",
        "{{__init__.__globals__}}",
        "{{first_name[0]}}",
        "{{metadata['email']}}",
        "{{first_name()}}",
        "{{first_name.__class__.__base__.__subclasses__()}}",
        "{{7*7}}",
        "{{ first_name + company }}",
        "{{'{}'.format(first_name)}}",
        "{{ lookup first_name }}",
    ],
)
def test_expressions_are_refused(template: str) -> None:
    with pytest.raises(MalformedPlaceholder) as caught:
        render(template, ADA)
    assert caught.value.position == 0


# --- malformed placeholders -------------------------------------------------------------------

MALFORMED = {
    "unclosed": "Hi {{first_name, welcome",
    "unclosed at the end": "Hi {{",
    "stray closing": "Hi first_name}}",
    "closing only": "}}",
    "empty": "Hi {{}}",
    "blank": "Hi {{  }}",
    "digit first": "Hi {{1st_name}}",
    "hyphen": "Hi {{first-name}}",
    "non-ASCII name": "Hi {{prénom}}",
    "name of 65 characters": "Hi {{" + "n" * 65 + "}}",
    "triple braces": "Hi {{{first_name}}}",
    "nested": "Hi {{first_{{name}}}}",
    "two pipes": "Hi {{first_name|a|b}}",
    "brace in fallback": "Hi {{first_name|{x}}}",
    "single closing brace": "Hi {{first_name}",
    "Mustache section": "{{#items}}x{{/items}}",
    "Mustache inverted": "{{^items}}none{{/items}}",
    "Mustache partial": "{{> header}}",
    "Mustache comment": "{{! note }}",
    "Mustache unescaped": "{{&first_name}}",
    "Mustache delimiter": "{{=<% %>=}}",
    "Jinja statement": "{% if x %}{{x}}{% endif }}",
    "after a good one": "Hi {{first_name}}, }} there",
}


@pytest.mark.parametrize("template", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_placeholders_are_refused_with_their_position(template: str) -> None:
    with pytest.raises(MalformedPlaceholder) as caught:
        placeholders(template)
    position = caught.value.position
    assert template[position : position + 2] in ("{{", "}}"), (template, position)
    # Everything before the reported braces is well formed.
    well_formed = [p for p in re.finditer(r"\{\{\s*\w+\s*\}\}", template) if p.end() <= position]
    assert placeholders(template[:position]) == [
        Placeholder(p.group().strip("{} \t"), None) for p in well_formed
    ]
    assert f"character {position + 1}" in str(caught.value)
    with pytest.raises(MalformedPlaceholder):
        render(template, ADA | {"items": "x", "x": "y"})


def test_the_longest_name_is_64_characters() -> None:
    name = "n" * 64
    assert render(f"{{{{{name}}}}}", {name: "ok"}) == "ok"


def test_placeholders_are_listed_in_order_with_their_fallbacks() -> None:
    found = placeholders("{{a}} {{ b | fall back }} {{a|x}} {{c|}}")
    assert found == [
        Placeholder("a", None),
        Placeholder("b", "fall back"),
        Placeholder("a", "x"),
        Placeholder("c", ""),
    ]


def test_required_variables_are_those_without_a_fallback() -> None:
    templates = ["{{a}} {{b|x}}", None, "", "{{c}} {{b}}", "{{d|}}"]
    assert required_variables(templates) == {"a", "b", "c"}
    with pytest.raises(MalformedPlaceholder):
        required_variables(["{{a}}", "{{a.b}}"])


# --- properties -------------------------------------------------------------------------------

PROPERTIES = settings(max_examples=300, deadline=None, database=None)
text_without_braces = st.text(st.characters(blacklist_characters="{}"), max_size=20)
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
fallbacks = st.text(st.characters(blacklist_characters="{}|"), max_size=10)
values = st.one_of(text_without_braces, st.integers(), st.booleans(), st.none())


@PROPERTIES
@given(
    parts=st.lists(
        st.tuples(text_without_braces, names, st.none() | fallbacks),
        max_size=6,
    ),
    tail=text_without_braces,
    metadata=st.dictionaries(names, values, max_size=8),
)
def test_rendering_matches_a_model_of_the_rules(
    parts: list[tuple[str, str, str | None]], tail: str, metadata: dict[str, Any]
) -> None:
    """Literal text, placeholders with or without a fallback: the result is what the rules of
    domain.md give, computed here independently, or MissingVariable for the first variable
    with no value and no fallback."""
    template = "".join(
        text + "{{" + name + ("" if fallback is None else "|" + fallback) + "}}"
        for text, name, fallback in parts
    )
    template += tail

    def value(name: str) -> str | None:
        raw = metadata.get(name)
        if raw is None or raw == "" or (isinstance(raw, str) and not raw.strip()):
            return None
        return ("true" if raw else "false") if isinstance(raw, bool) else str(raw)

    expected, missing = "", None
    for text, name, fallback in parts:
        filled = value(name)
        if filled is None and fallback is None and missing is None:
            missing = name
        expected += text + (filled if filled is not None else (fallback or "").strip())
    expected += tail
    if missing is not None:
        with pytest.raises(MissingVariable) as caught:
            render(template, metadata)
        assert caught.value.name == missing
    else:
        assert render(template, metadata) == expected


@PROPERTIES
@given(template=st.text(st.sampled_from("{}|._ a1\n"), max_size=30))
def test_any_text_renders_or_is_refused_with_one_of_the_two_errors(template: str) -> None:
    metadata = {"a": "A", "a1": "B", "_": "C"}
    try:
        rendered = render(template, metadata)
    except (MalformedPlaceholder, MissingVariable):
        return
    assert isinstance(rendered, str)
    if "{{" not in template and "}}" not in template:
        assert rendered == template
