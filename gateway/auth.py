"""Signed tokens (PyJWT, HS256) and the pure decision of what a token allows.

The tenant always comes from the token, never from a frame: a client cannot name another
tenant. Owners are owner keys (``user:alice``, ``agent:support-bot``, ``run:r1``) or ``*``
for every owner of the tenant. Rights: ``read``, ``write``, ``subscribe``, and ``admin``
(tenant-wide subscriptions).
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from pathlib import Path
from typing import Literal

import jwt
import msgspec

from runtime.errors import ConfigError, Forbidden, Unauthenticated

Right = Literal["read", "write", "subscribe", "admin"]
ALL_RIGHTS: tuple[Right, ...] = ("read", "write", "subscribe")
ANY_OWNER = "*"
_ALGORITHM = "HS256"
_ISSUER = "memstream"


class Grant(msgspec.Struct, frozen=True):
    """What one verified token allows."""

    tenant: str
    owners: frozenset[str]
    rights: frozenset[str]
    subject: str = ""
    expires_at: float | None = None

    def require(self, right: Right, owner: str | None = None) -> None:
        if right not in self.rights and "admin" not in self.rights:
            raise Forbidden(f"this token has no {right!r} right")
        if owner is not None and not self.allows_owner(owner):
            raise Forbidden(f"this token does not cover owner {owner!r}")

    def allows_owner(self, owner: str) -> bool:
        return ANY_OWNER in self.owners or owner in self.owners


def mint_token(secret: str, *, tenant: str, owners: list[str], rights: list[str] | tuple[str, ...] = ALL_RIGHTS,
               ttl_s: int = 86400, subject: str | None = None, now: float | None = None) -> str:
    if not tenant:
        raise ValueError("a token needs a tenant")
    unknown = set(rights) - {"read", "write", "subscribe", "admin"}
    if unknown:
        raise ValueError(f"unknown rights: {sorted(unknown)}")
    issued = int(now if now is not None else time.time())
    claims = {"iss": _ISSUER, "sub": subject or str(uuid.uuid4()), "iat": issued, "exp": issued + int(ttl_s),
              "tenant": tenant, "owners": list(owners), "rights": list(rights)}
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def verify_token(secret: str, token: str, now: float | None = None) -> Grant:
    """A verified grant, or ``Unauthenticated`` saying why (never which secret was expected).

    Expiry is checked against ``now`` (default: the wall clock) here rather than inside PyJWT, so
    that the gateway's clock, which also expires grants on open connections, decides both."""
    try:
        claims = jwt.decode(token, secret, algorithms=[_ALGORITHM], issuer=_ISSUER,
                            options={"require": ["exp", "iat", "iss", "sub"], "verify_exp": False})
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"invalid token: {exc}") from None
    exp = claims["exp"]
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise Unauthenticated("invalid token: exp must be a number")
    if exp <= (time.time() if now is None else now):
        raise Unauthenticated("token expired")
    tenant, owners, rights = claims.get("tenant"), claims.get("owners"), claims.get("rights")
    if not isinstance(tenant, str) or not tenant:
        raise Unauthenticated("invalid token: no tenant")
    if not isinstance(owners, list) or not all(isinstance(o, str) for o in owners):
        raise Unauthenticated("invalid token: owners must be a list of owner keys")
    if not isinstance(rights, list) or not all(isinstance(r, str) for r in rights):
        raise Unauthenticated("invalid token: rights must be a list")
    return Grant(tenant=tenant, owners=frozenset(owners), rights=frozenset(rights), subject=str(claims["sub"]),
                 expires_at=float(claims["exp"]))


def owner_keys(user_ids: list[str] = (), agent_ids: list[str] = (), run_ids: list[str] = ()) -> list[str]:
    """Owner keys as ``runtime.model.Scope.owner`` spells them."""
    return ([f"user:{u}" for u in user_ids] + [f"agent:{a}" for a in agent_ids] + [f"run:{r}" for r in run_ids])


def token_secret(env_name: str, data_dir: str | Path) -> tuple[str, bool]:
    """The signing secret and whether it is a development one.

    Production sets the secret in the environment. Without it, a random secret is created once
    and kept (mode 0600) in the data folder, so tokens minted by ``memstream token`` keep working
    across restarts of a development gateway.
    """
    value = os.environ.get(env_name)
    if value:
        if len(value.encode()) < 32:
            raise ConfigError(f"{env_name} must be at least 32 bytes long (HS256 key length, RFC 7518 3.2)")
        return value, False
    path = Path(data_dir) / "gateway.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
    return path.read_text().strip(), True
