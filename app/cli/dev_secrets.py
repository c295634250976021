"""Development webhook secrets: ``dev`` makes up each provider secret the environment leaves
unset, so the provider webhooks accept requests under ``make run`` (they refuse everything
while no secret is configured), and prints them beside the development key.

They are kept in ``<data dir>/dev-webhook-secrets.json`` (mode 600), next to the development
key and the embedded database, so a URL registered or a command copied once keeps working
across restarts. A secret set in the environment is used as is and never written there.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from app.settings import Settings

FILE_NAME = "dev-webhook-secrets.json"
VARIABLES = (
    "CAMPAIGN_LEMLIST_WEBHOOK_SECRET",
    "CAMPAIGN_POSTMARK_WEBHOOK_USER",
    "CAMPAIGN_POSTMARK_WEBHOOK_PASSWORD",
    "CAMPAIGN_PHANTOMBUSTER_WEBHOOK_SECRET",
)


@dataclass(frozen=True, slots=True)
class WebhookSecrets:
    generated: dict[str, str]
    """Variable → value, for the secrets made up (or reused) for development."""
    configured: tuple[str, ...]
    """The variables the environment sets: used as they are, never printed."""
    path: Path


def _settings_field(variable: str) -> str:
    return variable.removeprefix("CAMPAIGN_").lower()


def _kept(path: Path) -> dict[str, str]:
    """The secrets an earlier run kept; an unreadable file is made again, not an error."""
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(kept, dict):
        return {}
    return {k: v for k, v in kept.items() if k in VARIABLES and isinstance(v, str) and v}


def development_webhook_secrets(settings: Settings) -> WebhookSecrets:
    """The secrets ``settings`` lacks, reused from the data directory or made up there."""
    path = settings.data_dir / FILE_NAME
    kept = _kept(path)
    configured, generated = [], {}
    for variable in VARIABLES:
        value = getattr(settings, _settings_field(variable))
        if value is not None and (value if isinstance(value, str) else value.get_secret_value()):
            configured.append(variable)
        elif variable.endswith("_USER"):
            generated[variable] = kept.get(variable) or "postmark"
        else:
            generated[variable] = kept.get(variable) or secrets.token_urlsafe(24)
    if generated and generated != {k: kept.get(k) for k in generated}:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(generated, handle, indent=2)
    return WebhookSecrets(generated, tuple(configured), path)


def describe(found: WebhookSecrets, base_url: str) -> str:
    """What ``dev`` prints: how each provider reaches its webhook with these secrets."""
    if not found.generated:
        return "Webhook secrets: all configured in the environment.\n"
    secret = found.generated.get
    lines = [f"Webhook secrets (development; kept in {found.path}):"]
    if secret("CAMPAIGN_LEMLIST_WEBHOOK_SECRET"):
        lines.append(
            f"  lemlist:       {base_url}/webhooks/lemlist"
            f"?secret={secret('CAMPAIGN_LEMLIST_WEBHOOK_SECRET')}"
        )
    user, password = (
        secret("CAMPAIGN_POSTMARK_WEBHOOK_USER"),
        secret("CAMPAIGN_POSTMARK_WEBHOOK_PASSWORD"),
    )
    if user or password:
        lines.append(
            f"  postmark:      {base_url}/webhooks/postmark with HTTP Basic"
            f" user {user or '(from CAMPAIGN_POSTMARK_WEBHOOK_USER)'},"
            f" password {password or '(from CAMPAIGN_POSTMARK_WEBHOOK_PASSWORD)'}"
        )
    if secret("CAMPAIGN_PHANTOMBUSTER_WEBHOOK_SECRET"):
        lines.append(
            f"  phantombuster: {base_url}/webhooks/phantombuster"
            f"?secret={secret('CAMPAIGN_PHANTOMBUSTER_WEBHOOK_SECRET')}"
        )
    lines.extend(f"  ({variable} is configured)" for variable in found.configured)
    return "\n".join(lines) + "\n"


def export(found: WebhookSecrets) -> None:
    """Hand the secrets to the server ``dev`` starts in this process (and to its reloader's
    children, which inherit the environment)."""
    os.environ.update(found.generated)
