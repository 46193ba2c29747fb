from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from aiguard.policy._base import Section


class IdentityPolicy(Section):
    """How conversations and end users are identified (always pseudonymously)."""

    secret: SecretStr | None = None
    """HMAC key for subject pseudonyms and cookie signatures. When unset, a random one is generated
    once and persisted in ``secret_file`` (fine for the demo; set it explicitly in production so
    every replica shares it)."""
    secret_file: Path = Path("var/aiguard-secret")
    """Where the generated secret is kept (created with mode 0600)."""
    cookie_name: str = "aiguard_sid"
    """Signed, HttpOnly, SameSite=Lax cookie holding a random browser id."""
    cookie_secure: bool = False
    """Set the ``Secure`` attribute (enable behind HTTPS)."""
    cookie_max_age_days: int = Field(default=365, ge=1)
    """Lifetime of the browser-id cookie."""
    subject_header: str = "x-aiguard-subject"
    """A deployer-supplied end-user id (hashed before use); else the request's ``user`` field;
    else the signed cookie."""
    conversation_header: str = "x-conversation-id"
    """Conversation id supplied by the client; else the ``user`` field; else the cookie."""
