"""PhantomBuster's ``POST /api/v2/agents/launch``: one LinkedIn action per launch, run by the
agent ``provider_config.phantombuster_agents`` names for that action.

The argument carries the profile URL, the rendered message, and our ``enrollmentId`` and
``stepNumber``: PhantomBuster copies input columns into its result rows, so the webhook of the
run (``app.providers.phantombuster``) links each row back to its touch. PhantomBuster cannot be
asked whether a launch it may have received happened, so a lost answer is never resent.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from app.domain.enums import Provider
from app.providers.http import body_of, short, timed, transient_status, transport_failure
from app.providers.outbound import Kind, Outcome, Touch

LAUNCH = "/api/v2/agents/launch"


def launch_body(touch: Touch) -> dict[str, object]:
    assert touch.action is not None, "a LinkedIn touch names its action"
    return {
        "id": touch.sender.agents[touch.action],
        "argument": {
            "profileUrl": touch.address,
            "message": touch.body,
            "enrollmentId": str(touch.enrollment_id),
            "stepNumber": touch.step_number,
            "dispatchId": str(touch.dispatch_id),
        },
    }


class PhantomBusterClient:
    provider = Provider.PHANTOMBUSTER
    batch_size = 1
    reconcilable = False
    idempotent = False

    def __init__(self, http: httpx.AsyncClient, base_url: str, api_key: str) -> None:
        self._http = http
        self._url = base_url + LAUNCH
        self._headers = {"X-Phantombuster-Key": api_key}

    async def send(self, touches: Sequence[Touch]) -> list[Outcome]:
        return [await self._launch(touch) for touch in touches]

    async def _launch(self, touch: Touch) -> Outcome:
        body = launch_body(touch)
        try:
            response = await timed(
                "phantombuster",
                LAUNCH,
                lambda: self._http.post(self._url, json=body, headers=self._headers),
            )
        except httpx.HTTPError as exc:
            return transport_failure(exc)
        transient = transient_status(response)
        if transient is not None:
            return transient
        answer = body_of(response)
        if response.status_code == 200 and isinstance(answer, dict) and answer.get("containerId"):
            return Outcome.sent(str(answer["containerId"]))
        if response.status_code == 200:
            return Outcome(Kind.UNCERTAIN, error_code="BAD_ANSWER", error="no containerId")
        text = answer.get("error") if isinstance(answer, dict) else response.text
        # A 4xx here is about the agent or the key (PhantomBuster does not check the profile
        # at launch): retried while an operator fixes the configuration.
        return Outcome(Kind.RETRY, error_code=f"HTTP {response.status_code}", error=short(text))

    async def find(self, touch: Touch) -> str | None:
        raise NotImplementedError("PhantomBuster cannot be asked whether a launch happened")
