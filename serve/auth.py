"""Who may call the service: bearer API keys with two scopes, and where it may listen without any.

``AGENTIC_ROUTER_READ_KEY`` grants the read scope (route, query, listings, model list, metrics);
``AGENTIC_ROUTER_ADMIN_KEY`` grants everything. A missing or wrong key is a 401, a read key on an admin
endpoint a 403. With no key configured the service is open, which is only acceptable on the loopback
interface, so ``check_bind`` refuses any other address before the server starts.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from dataclasses import dataclass
from typing import Mapping

from fastapi import HTTPException

from agentic_router.indexes.errors import ConfigError

READ_KEY_ENV = "AGENTIC_ROUTER_READ_KEY"
ADMIN_KEY_ENV = "AGENTIC_ROUTER_ADMIN_KEY"
READ = "read"
ADMIN = "admin"
MIN_KEY_CHARS = 16


@dataclass(frozen=True)
class ApiKeys:
    """The configured keys; None means that scope has no key of its own."""

    read: str | None = None
    admin: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "ApiKeys":
        env = os.environ if environ is None else environ
        keys = cls(read=(env.get(READ_KEY_ENV) or "").strip() or None,
                   admin=(env.get(ADMIN_KEY_ENV) or "").strip() or None)
        keys.validate()
        return keys

    def validate(self) -> None:
        """A short key can be guessed and one key for both scopes makes the read scope meaningless."""
        for env, key in ((READ_KEY_ENV, self.read), (ADMIN_KEY_ENV, self.admin)):
            if key is not None and len(key) < MIN_KEY_CHARS:
                raise ConfigError(f"{env} must be at least {MIN_KEY_CHARS} characters")
        if self.read is not None and self.read == self.admin:
            raise ConfigError(f"{READ_KEY_ENV} and {ADMIN_KEY_ENV} must differ")

    @property
    def configured(self) -> bool:
        return self.read is not None or self.admin is not None

    def scope_of(self, token: str) -> str | None:
        """The scope a presented key grants (compared in constant time), or None for an unknown key."""
        if self.admin is not None and hmac.compare_digest(token.encode(), self.admin.encode()):
            return ADMIN
        if self.read is not None and hmac.compare_digest(token.encode(), self.read.encode()):
            return READ
        return None

    def require(self, authorization: str | None, scope: str) -> None:
        """Raise 401 or 403 unless ``authorization`` (the header's value) grants ``scope``."""
        if not self.configured:
            return  # open service; only ever bound to loopback (check_bind)
        token = bearer_token(authorization)
        granted = self.scope_of(token) if token else None
        if granted is None:
            raise HTTPException(401, "missing or wrong API key; send 'Authorization: Bearer <key>'",
                                headers={"WWW-Authenticate": "Bearer"})
        if scope == ADMIN and granted != ADMIN:
            raise HTTPException(403, "this endpoint needs the admin key; the read key was given")


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, ``localhost``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything: treat it as public


def check_bind(host: str, keys: ApiKeys) -> None:
    """Refuse to serve an open (keyless) API on an address other machines can reach."""
    if not keys.configured and not is_loopback(host):
        raise ConfigError(f"refusing to listen on {host} without an API key; set {ADMIN_KEY_ENV} (and "
                          f"{READ_KEY_ENV}) or bind to 127.0.0.1")
