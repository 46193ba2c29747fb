"""Who is asking, pseudonymously: subject id, conversation id, message ids, signed cookie.

Raw identifiers (a deployer's user id, the request's ``user`` field, the cookie's random id) are
never stored: the subject id is ``HMAC-SHA256(secret, "subject:" + raw)`` truncated to 128 bits.
"""

from __future__ import annotations

import base64
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from aiguard.errors import ConfigError
from aiguard.policy.identity import IdentityPolicy


@dataclass(slots=True)
class RequestIdentity:
    """Resolved once per guarded or API request; stored in ``scope["aiguard.identity"]``."""

    subject_id: str  # pseudonym, 32 hex chars
    conversation_id: str
    locale: str
    client_ip: str | None = None
    user_agent: str | None = None
    set_cookie: str | None = None  # a Set-Cookie header value when a new cookie was minted


def load_secret(policy: IdentityPolicy) -> bytes:
    """The configured secret, else one generated once and kept in ``secret_file`` (mode 0600)."""
    if policy.secret is not None:
        value = policy.secret.get_secret_value().encode("utf-8")
        if len(value) < 16:
            raise ConfigError("invalid policy key 'identity.secret': use at least 16 characters")
        return value
    path = Path(policy.secret_file)
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32).encode("ascii")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its secret
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(value)
    return value


_MEMO_MAX = 65_536
_MEMO_KEY_MAX = 256


class Pseudonymizer:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        # the same few ids come back on every request: remember their pseudonyms (bounded)
        self._memo: dict[str, str] = {}

    def _hmac(self, raw: str) -> str:
        found = self._memo.get(raw)
        if found is None:
            found = hmac.digest(self._secret, raw.encode("utf-8"), "sha256").hex()[:32]
            if len(raw) <= _MEMO_KEY_MAX:  # a huge raw id must not pin memory
                if len(self._memo) >= _MEMO_MAX:
                    self._memo.clear()
                self._memo[raw] = found
        return found

    def subject(self, raw: str) -> str:
        return self._hmac("subject:" + raw)

    def conversation(self, raw: str) -> str:
        return self._hmac("conv:" + raw)

    def sign(self, value: str) -> str:
        mac = hmac.digest(self._secret, b"cookie:" + value.encode("ascii"), "sha256")
        return value + "." + base64.urlsafe_b64encode(mac[:18]).decode("ascii")

    def unsign(self, token: str) -> str | None:
        value, _, _ = token.rpartition(".")
        if not value or len(token) > 200 or not token.isascii():
            return None
        return value if hmac.compare_digest(self.sign(value), token) else None


def new_message_id() -> str:
    return "msg_" + os.urandom(16).hex()  # 128 random bits, as a uuid4 but cheaper


def new_cookie_value() -> str:
    return secrets.token_urlsafe(18)
