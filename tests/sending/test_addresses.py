"""An address is normalized in Python (enrollment checks, operators' suppressions) and in SQL
(the sender's suppression check, the effects that suppress, the suppressions table's CHECK and
the address indexes). The two must agree on every input, or a suppressed address slips past
one of them: PostgreSQL itself computes the SQL side here, for generated inputs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.addresses import normalize, normalized_sql, problem
from app.domain.enums import Channel

# Whitespace of every kind, and letters whose lower case is special (a dotted capital I whose
# full lower case is two characters, a final sigma, a sharp s) or that only look alike.
SPACES = " \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u1680\u2003\u2028\u202f\u3000"
LETTERS = "aZ09._-+%Éé\u0130\u0131IiΣ\u03c3\u03c2ßẞÅǅДдÆ"  # dotted and dotless i, sigmas
any_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)
padding = st.text(st.sampled_from(SPACES), max_size=3)
word = st.text(st.sampled_from(LETTERS), min_size=1, max_size=12)
emails = st.builds(
    lambda before, local, domain, tld, after: f"{before}{local}@{domain}.{tld}{after}",
    padding,
    word,
    word,
    st.sampled_from(["com", "COM", "Co.Uk", "ΣΣ"]),
    padding,
)
linkedin_urls = st.builds(
    lambda before, scheme, host, kind, slug, tail, after: (
        f"{before}{scheme}{host}/{kind}/{slug}{tail}{after}"
    ),
    padding,
    st.sampled_from(["", "http://", "https://", "HTTPS://", "https://www.", "WWW.", "ftp://"]),
    st.sampled_from(["linkedin.com", "LinkedIn.com", "fr.linkedin.com", "www.linkedin.com"]),
    st.sampled_from(["in", "IN", "pub", "company"]),
    word,
    st.sampled_from(["", "/", "//", "?trk=x", "/?a=1#b", "#top", "?x=1?y=2", "/ "]),
    padding,
)
inputs = st.lists(st.one_of(any_text, emails, linkedin_urls), min_size=1, max_size=40)


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(raws=inputs)
@pytest.mark.parametrize("channel", list(Channel))
async def test_python_and_postgresql_normalize_alike(
    engine: AsyncEngine, channel: Channel, raws: list[str]
) -> None:
    ours = [normalize(channel, raw) for raw in raws]
    statement = text(
        f"SELECT {normalized_sql(channel, 'r.raw')} AS theirs,"
        f" {normalized_sql(channel, 'r.ours')} AS again"
        " FROM unnest(CAST(:raws AS text[]), CAST(:ours AS text[]))"
        " WITH ORDINALITY AS r(raw, ours, n) ORDER BY r.n"
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement, {"raws": raws, "ours": ours})).all()
    for raw, mine, (theirs, again) in zip(raws, ours, rows, strict=True):
        assert mine == theirs, (raw, mine, theirs)
        if problem(channel, raw) is None:
            # A valid address as Python stores it passes the suppressions table's CHECK
            # (address = its SQL form): normalizing is idempotent on both sides.
            assert again == mine, (raw, mine, again)
            assert normalize(channel, mine) == mine


@pytest.mark.parametrize(
    ("channel", "variants"),
    [
        (
            Channel.EMAIL,
            ["ada@example.com", " Ada@Example.COM", "ADA@EXAMPLE.COM  "],
        ),
        (
            Channel.LINKEDIN,
            [
                "linkedin.com/in/ada-l",
                "https://www.linkedin.com/in/Ada-L/",
                "http://LinkedIn.com/in/ada-l?trk=public_profile#about",
                " www.linkedin.com/in/ada-l// ",
            ],
        ),
    ],
)
def test_the_ways_of_writing_one_address_normalize_to_one(
    channel: Channel, variants: list[str]
) -> None:
    assert {normalize(channel, v) for v in variants} == {variants[0]}
    assert all(problem(channel, v) is None for v in variants)


@pytest.mark.parametrize(
    ("channel", "raw"),
    [
        (Channel.EMAIL, "ada@example.com\t"),
        (Channel.EMAIL, "ada@example.com\n"),
        (Channel.EMAIL, "\xa0ada@example.com"),
        (Channel.LINKEDIN, "linkedin.com/in/ada-l\n"),
    ],
)
def test_an_address_padded_with_other_whitespace_than_spaces_is_not_valid(
    channel: Channel, raw: str
) -> None:
    """PostgreSQL's btrim removes spaces only: an address that would need more trimming to
    be valid is refused rather than compared in two different forms."""
    assert problem(channel, raw) is not None
