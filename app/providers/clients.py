"""Which client serves each provider in this process: the real API when its credential is
set; in development the dry run otherwise; in production nothing, so that its touches wait
visibly instead of being dropped or faked."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from app.domain.enums import Provider
from app.providers.dry_run import DryRunClient
from app.providers.lemlist_client import LemlistClient
from app.providers.outbound import Client
from app.providers.phantombuster_client import PhantomBusterClient
from app.providers.postmark_client import PostmarkClient
from app.settings import Settings

CREDENTIAL_SETTING = {
    Provider.POSTMARK: "CAMPAIGN_POSTMARK_SERVER_TOKEN",
    Provider.PHANTOMBUSTER: "CAMPAIGN_PHANTOMBUSTER_API_KEY",
    Provider.LEMLIST: "CAMPAIGN_LEMLIST_API_KEY",
}


@dataclass(frozen=True, slots=True)
class Clients:
    by_provider: dict[Provider, Client] = field(default_factory=dict)

    def get(self, provider: Provider) -> Client | None:
        return self.by_provider.get(provider)

    def is_dry_run(self, provider: Provider) -> bool:
        return isinstance(self.by_provider.get(provider), DryRunClient)


def _secret(settings: Settings, provider: Provider) -> str | None:
    secret = {
        Provider.POSTMARK: settings.postmark_server_token,
        Provider.PHANTOMBUSTER: settings.phantombuster_api_key,
        Provider.LEMLIST: settings.lemlist_api_key,
    }.get(provider)
    return (secret.get_secret_value() or None) if secret is not None else None


def can_send(settings: Settings, provider: Provider) -> bool:
    """Whether this deployment sends through ``provider``: its credential is set, or this is
    development (where the dry run stands in)."""
    return _secret(settings, provider) is not None or not settings.is_production


def build_clients(settings: Settings, http: httpx.AsyncClient) -> Clients:
    chosen: dict[Provider, Client] = {}
    for provider in CREDENTIAL_SETTING:
        secret = _secret(settings, provider)
        if secret is not None:
            chosen[provider] = _real(provider, settings, http, secret)
        elif not settings.is_production:
            chosen[provider] = DryRunClient(provider)
    return Clients(chosen)


def _real(provider: Provider, settings: Settings, http: httpx.AsyncClient, secret: str) -> Client:
    if provider is Provider.POSTMARK:
        return PostmarkClient(http, settings.postmark_api_url, secret)
    if provider is Provider.PHANTOMBUSTER:
        return PhantomBusterClient(http, settings.phantombuster_api_url, secret)
    return LemlistClient(http, settings.lemlist_api_url, secret)
