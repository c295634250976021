"""``campaign-api contacts erase``, run as an operator runs it (a subprocess on the test
database): one contact by id, or a CSV whose every line is reported; each contact is its own
transaction, so a bad line does not keep the others from being erased, and a repeat is safe."""

from __future__ import annotations

import getpass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from testkit.campaigns import build_campaign
from tests.erasure.helpers import traces
from tests.sending.test_sending_cli import cli, reported_lines


async def test_contacts_erase_by_id_and_by_file(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    tmp_path: Path,
) -> None:
    await build_campaign(app_sessionmaker, 4)
    await build_campaign(app_sessionmaker, 4, template_type="email")
    people = {n: (f"person{n}@example.com", f"ada{n}") for n in range(4)}
    for email, name in people.values():
        assert await traces(engine, (email, name))

    single = await cli(tmp_path, database_url, "contacts", "erase", "crm-3")
    assert single.returncode == 0, single.stderr
    assert single.stdout.startswith("erased (2 enrollments"), single.stdout
    again = await cli(tmp_path, database_url, "contacts", "erase", "crm-3")
    assert again.returncode == 0, again.stderr
    assert f"by cli:{getpass.getuser()}" in again.stdout
    unknown = await cli(tmp_path, database_url, "contacts", "erase", "crm-99")
    assert (unknown.returncode, unknown.stdout) == (2, "")
    assert unknown.stderr == "campaign-api: no enrollment of contact 'crm-99'\n"

    csv_file = tmp_path / "forget.csv"
    csv_file.write_text("contact_id,note\ncrm-0,asked by mail\nnobody,\ncrm-1,\n  ,\ncrm-0,\n")
    result = await cli(tmp_path, database_url, "contacts", "erase", "--file", str(csv_file))
    assert result.returncode == 1, result.stderr
    lines = reported_lines(result.stdout)
    assert lines[2].startswith("erased (2 enrollments")
    assert lines[3] == "no enrollment of contact 'nobody'"
    assert lines[4].startswith("erased (2 enrollments")
    assert lines[5] == "contact id must not be blank"
    assert lines[6].startswith("already erased on ")
    assert result.stdout.endswith("3 contacts erased or already erased, 2 not\n")

    for n, (email, name) in people.items():
        assert bool(await traces(engine, (email, name))) is (n == 2), n

    no_column = tmp_path / "wrong.csv"
    no_column.write_text("id\ncrm-2\n")
    refused = await cli(tmp_path, database_url, "contacts", "erase", "--file", str(no_column))
    assert refused.returncode == 2
    assert "no 'contact_id' column" in refused.stderr
    assert await traces(engine, people[2])
