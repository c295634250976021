"""The development stand-in for a provider without credentials: each touch is rendered and
recorded as sent (its send event carries ``metadata.dry_run = true``) and logged with its
rendered subject, so ``make run`` shows a campaign progress offline. Nothing leaves the
machine. Production never uses it: a missing credential there is a configuration error."""

from __future__ import annotations

from collections.abc import Sequence

from app.domain.enums import Provider
from app.observability.logs import get_logger
from app.providers.outbound import Outcome, Touch

log = get_logger("sender.dry_run")


class DryRunClient:
    batch_size = 500
    reconcilable = False
    idempotent = True
    dry_run = True

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    async def send(self, touches: Sequence[Touch]) -> list[Outcome]:
        for touch in touches:
            log.info(
                "dry_run_send",
                provider=self.provider.value,
                dispatch_id=str(touch.dispatch_id),
                enrollment_id=str(touch.enrollment_id),
                channel=touch.channel.value,
                step_number=touch.step_number,
                subject=touch.subject,
                action=touch.action.value if touch.action else None,
            )
        return [Outcome.sent(f"dry-run:{touch.dispatch_id}") for touch in touches]

    async def find(self, touch: Touch) -> str | None:
        raise NotImplementedError("a dry run is sent again: nothing left the machine")
