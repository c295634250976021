"""key revocation: a change to an API key that can end a secret's validity NOTIFYs
campaign_api_keys with the key's id, in the changing transaction

Revision ID: 20261207_0011_key_revocation
Revises: 20261207_0010_shared_rate_limits
Create Date: 2026-12-07 17:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "20261207_0011_key_revocation"
down_revision: str | None = "20261207_0010_shared_rate_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A trigger, not the services: a revocation from the CLI, a rotation ending an old secret, a
# new expiry or a hand-written UPDATE all announce themselves. last_used_at (written every
# minute per key) announces nothing. The NOTIFY is delivered only if the transaction commits.
ANNOUNCE = """
CREATE OR REPLACE FUNCTION api_keys_announce() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       OR (NEW.name, NEW.key_hash, NEW.scopes, NEW.revoked, NEW.expires_at,
           NEW.previous_key_hash, NEW.previous_key_valid_until)
          IS DISTINCT FROM
          (OLD.name, OLD.key_hash, OLD.scopes, OLD.revoked, OLD.expires_at,
           OLD.previous_key_hash, OLD.previous_key_valid_until)
    THEN
        PERFORM pg_notify('campaign_api_keys', OLD.id::text);
    END IF;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.execute(ANNOUNCE)
    op.execute(
        "CREATE TRIGGER trg_api_keys_announce AFTER UPDATE OR DELETE ON api_keys "
        "FOR EACH ROW EXECUTE FUNCTION api_keys_announce()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER trg_api_keys_announce ON api_keys")
    op.execute("DROP FUNCTION api_keys_announce()")
