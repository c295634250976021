"""Enrolling refuses a contact whose address for one of the template's channels is suppressed,
however the address is written: enrollContact answers SUPPRESSED, bulkEnroll skips the contact
with the reason SUPPRESSED and its index, and enrolls the others."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from testkit.campaigns import build_campaign, contact
from tests.lifecycle.helpers import ENROLL_CONTACT, mutate
from tests.sending.conftest import rows

ADD = """
mutation Add($input: AddSuppressionInput!) {
  addSuppression(input: $input) { suppression { address } errors { code } }
}
"""
BULK_ENROLL = """
mutation Bulk($instanceId: ID!, $contacts: [EnrollContactInput!]!) {
  bulkEnroll(instanceId: $instanceId, contacts: $contacts) {
    enrolledCount skippedCount
    skipped { index contactId reason message }
    enrollments { contactId }
    errors { field code message }
  }
}
"""
SUPPRESSED_EMAIL = "ada@example.com"
SUPPRESSED_PROFILE = "https://www.linkedin.com/in/grace-h"


def person(contact_id: str, n: int, **addresses: str) -> dict[str, Any]:
    """A contact as the mutations take it: the bench's contact ``n`` with other addresses."""
    return {"contactId": contact_id, "metadata": contact(n).metadata | addresses}


async def suppress(client: httpx.AsyncClient, admin_key: str) -> None:
    for address, channel in ((SUPPRESSED_EMAIL, "EMAIL"), (SUPPRESSED_PROFILE, "LINKEDIN")):
        result = await mutate(
            client,
            admin_key,
            ADD,
            "addSuppression",
            {"input": {"address": address, "channel": channel}},
        )
        assert result["errors"] == [], result


async def enrolled_contacts(engine: AsyncEngine, instance_id: str) -> set[str]:
    found = await rows(
        engine,
        "SELECT contact_id FROM enrollments WHERE instance_id = CAST(:i AS uuid)",
        i=instance_id,
    )
    return {row[0] for row in found}


async def test_enroll_contact_refuses_a_suppressed_address_written_any_way(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    admin_key: str,
    write_key: str,
) -> None:
    campaign = await build_campaign(app_sessionmaker, 0)  # e-mail and LinkedIn steps
    await suppress(client, admin_key)
    attempts = {
        "email": person("a", 1, email=" ADA@Example.com "),
        "linkedin_url": person("b", 2, linkedin_url="http://LinkedIn.com/in/Grace-H/?trk=feed"),
        "linkedin_url ": person("c", 3, linkedin_url="www.linkedin.com/in/grace-h#about"),
    }
    for key, data in attempts.items():
        result = await mutate(
            client,
            write_key,
            ENROLL_CONTACT,
            "enrollContact",
            {"instanceId": campaign.instance_id, "input": data},
        )
        assert result["enrollment"] is None, result
        [error] = result["errors"]
        assert error["code"] == "SUPPRESSED", error
        assert error["field"][:2] == ["input", "metadata"], error
        assert f"metadata.{key.strip()}" in error["message"], error
    assert await enrolled_contacts(engine, campaign.instance_id) == set()

    fine = await mutate(
        client,
        write_key,
        ENROLL_CONTACT,
        "enrollContact",
        {"instanceId": campaign.instance_id, "input": person("d", 4)},
    )
    assert fine["errors"] == [], fine
    assert await enrolled_contacts(engine, campaign.instance_id) == {"d"}


async def test_bulk_enroll_skips_suppressed_contacts_with_their_index(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    admin_key: str,
    write_key: str,
) -> None:
    campaign = await build_campaign(app_sessionmaker, 0)
    await suppress(client, admin_key)
    contacts = [
        person("ok-1", 1),
        person("email-hit", 2, email="Ada@EXAMPLE.com"),
        person("ok-2", 3),
        person("profile-hit", 4, linkedin_url="https://linkedin.com/in/GRACE-H///"),
        person("both-hit", 5, email=SUPPRESSED_EMAIL, linkedin_url=SUPPRESSED_PROFILE),
    ]
    result = await mutate(
        client,
        write_key,
        BULK_ENROLL,
        "bulkEnroll",
        {"instanceId": campaign.instance_id, "contacts": contacts},
    )
    assert result["errors"] == [], result
    hits = [i for i, c in enumerate(contacts) if "hit" in c["contactId"]]
    assert [(s["index"], s["contactId"], s["reason"]) for s in result["skipped"]] == [
        (i, contacts[i]["contactId"], "SUPPRESSED") for i in hits
    ]
    assert all("suppression list" in s["message"] for s in result["skipped"])
    assert (result["enrolledCount"], result["skippedCount"]) == (2, len(hits))
    assert await enrolled_contacts(engine, campaign.instance_id) == {"ok-1", "ok-2"}
    assert {e["contactId"] for e in result["enrollments"]} == {"ok-1", "ok-2"}


async def test_only_the_channels_the_template_sends_on_are_checked(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    admin_key: str,
    write_key: str,
) -> None:
    """An e-mail campaign never touches the LinkedIn profile: its suppression does not
    keep the contact out; the e-mail address's does."""
    campaign = await build_campaign(app_sessionmaker, 0, template_type="email")
    await suppress(client, admin_key)
    contacts = [
        person("profile-suppressed", 1, linkedin_url=SUPPRESSED_PROFILE),
        person("email-suppressed", 2, email=SUPPRESSED_EMAIL),
    ]
    result = await mutate(
        client,
        write_key,
        BULK_ENROLL,
        "bulkEnroll",
        {"instanceId": campaign.instance_id, "contacts": contacts},
    )
    assert [(s["index"], s["reason"]) for s in result["skipped"]] == [(1, "SUPPRESSED")]
    assert await enrolled_contacts(engine, campaign.instance_id) == {"profile-suppressed"}
