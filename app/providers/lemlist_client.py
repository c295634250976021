"""lemlist runs its own sequence: at an enrollment's first due touch the sender adds the lead to
the lemlist campaign (``POST /api/campaigns/{campaignId}/leads/?deduplicate=true``, HTTP Basic
with the API key as password), with our ``enrollmentId`` as a custom variable so that
lemlist's webhooks link back. Later steps advance from those webhooks.

Adding the same lead twice does not reach the contact twice (lemlist answers that the lead is
already there), so a touch whose answer was lost is simply sent again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from app.domain.enums import Channel, Provider
from app.providers.http import body_of, short, timed, transient_status, transport_failure
from app.providers.outbound import Kind, Outcome, Touch

_VARIABLES = {"first_name": "firstName", "last_name": "lastName", "company": "companyName"}


def lead(touch: Touch) -> dict[str, Any]:
    """The lead: its address, lemlist's named fields, and every other variable as is."""
    fields: dict[str, Any] = {
        _VARIABLES.get(k, k): v
        for k, v in touch.variables.items()
        if isinstance(v, str | int | float | bool)
    }
    if touch.channel is Channel.EMAIL:
        fields["email"] = touch.address
    else:
        fields["linkedinUrl"] = touch.address
    fields["enrollmentId"] = str(touch.enrollment_id)
    return fields


class LemlistClient:
    provider = Provider.LEMLIST
    batch_size = 1
    reconcilable = False
    idempotent = True

    def __init__(self, http: httpx.AsyncClient, base_url: str, api_key: str) -> None:
        self._http = http
        self._base = base_url
        self._auth = httpx.BasicAuth("", api_key)

    async def send(self, touches: Sequence[Touch]) -> list[Outcome]:
        return [await self._add(touch) for touch in touches]

    async def _add(self, touch: Touch) -> Outcome:
        campaign = touch.sender.lemlist_campaign_id or ""
        path = f"/api/campaigns/{quote(campaign, safe='')}/leads/"
        try:
            response = await timed(
                "lemlist",
                "/api/campaigns/{campaignId}/leads/",
                lambda: self._http.post(
                    self._base + path,
                    params={"deduplicate": "true"},
                    json=lead(touch),
                    auth=self._auth,
                ),
            )
        except httpx.HTTPError as exc:
            return transport_failure(exc)
        transient = transient_status(response)
        if transient is not None:
            return transient
        answer = body_of(response)
        if response.status_code in (200, 201) and isinstance(answer, dict):
            return Outcome.sent(str(answer.get("_id") or f"{campaign}:{touch.enrollment_id}"))
        text = short(
            answer.get("error") or answer.get("message")
            if isinstance(answer, dict)
            else response.text
        )
        if response.status_code in (400, 409) and "already" in text.lower():
            return Outcome.sent(f"{campaign}:{touch.enrollment_id}")
        if response.status_code == 400 and "email" in text.lower():
            return Outcome(Kind.FAILED, error_code="INVALID_LEAD", error=text)
        return Outcome(Kind.RETRY, error_code=f"HTTP {response.status_code}", error=text)

    async def find(self, touch: Touch) -> str | None:
        raise NotImplementedError("lemlist is idempotent: a lost answer is sent again")
