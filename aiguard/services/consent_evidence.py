"""Evidence of where a consent came from, without keeping the IP address or user agent.

The IP is cut to its network (/24 for IPv4, /48 for IPv6, which is what a household or small
office usually shares) and both values are hashed with HMAC-SHA256 under a per-deployment salt,
so the same prefix gives the same hash inside one deployment but cannot be looked up elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from aiguard.policy.models import Policy

MAX_USER_AGENT = 512  # longer headers are cut before hashing: nothing real is longer


def ip_prefix(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        addr = ipaddress.ip_address(ip.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bits = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


def evidence_hash(salt: bytes, kind: str, value: str | None) -> str | None:
    if not value:
        return None
    return hmac.new(salt, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def derive_salt(secret: bytes) -> bytes:
    """A key for evidence only, so the identity secret itself is never used for two jobs."""
    return hmac.new(secret, b"aiguard consent evidence v1", hashlib.sha256).digest()


def configured_salt(policy: Policy) -> bytes | None:
    """``consent.evidence_salt``, else ``identity.secret``; None means: keep one in the database."""
    for secret in (policy.consent.evidence_salt, policy.identity.secret):
        if secret is not None:
            return derive_salt(secret.get_secret_value().encode("utf-8"))
    return None


def ip_evidence(salt: bytes, ip: str | None) -> str | None:
    return evidence_hash(salt, "ip", ip_prefix(ip))


def ua_evidence(salt: bytes, user_agent: str | None) -> str | None:
    return evidence_hash(salt, "ua", user_agent[:MAX_USER_AGENT] if user_agent else None)
