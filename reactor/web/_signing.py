"""HMAC-SHA256 signatures: single-use resume links and webhook signatures.

Both sign with a shared secret and compare in constant time (:func:`hmac.compare_digest`),
so a forger learns nothing from how long a refusal takes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Literal

import attrs

__all__ = [
    "SIGNATURE_HEADER",
    "WEBHOOK_TOLERANCE",
    "LinkClaim",
    "resume_link",
    "sign_webhook",
    "verify_link",
    "verify_webhook",
]

SIGNATURE_HEADER = "X-Reactor-Signature"
"""The header a signed webhook carries: ``t=<unix seconds>,v1=<hex HMAC-SHA256>``."""

WEBHOOK_TOLERANCE = 300
"""Seconds a webhook signature's timestamp may be away from now (a replay window)."""


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _mac(secret: str | bytes, message: bytes) -> str:
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def _same(expected: str, given: str) -> bool:
    # Compared as bytes: compare_digest refuses non-ASCII str, which a forger can send.
    return hmac.compare_digest(expected.encode(), given.encode(errors="replace"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@attrs.frozen
class LinkClaim:
    """What a resume link's token grants: resolving one interrupt until ``expires``.

    Attributes:
        execution_id: The execution.
        step: The interrupt's path.
        expires: Unix time after which the link answers 410.
    """

    execution_id: str
    step: str
    expires: int


def resume_link(
    execution_id: str,
    step: str,
    *,
    secret: str | bytes,
    base_url: str,
    expires_in: int = 7 * 24 * 3600,
) -> str:
    """A URL that opens one interrupt's form without a login.

    The token is an HMAC-SHA256 over the execution id, the step and the expiry, so it
    cannot be altered to open another interrupt or live longer. The link works once: after
    the interrupt is resolved (by anyone) it shows "already decided".

    Example::

        url = resume_link(ex.id, "manager_approval", secret=SECRET,
                          base_url="https://example.com/reactor")
        send_mail(manager, f"Please decide: {url}")

    Args:
        execution_id: The paused execution.
        step: The path of its pending interrupt.
        secret: The ``secret`` the web app was created with.
        base_url: Where the web app is mounted, e.g. ``"https://example.com/reactor"``.
        expires_in: Seconds the link stays valid (default: 7 days).

    Returns:
        ``f"{base_url}/link/{token}"``.

    Raises:
        ValueError: ``secret`` is empty or ``expires_in`` is not positive.
    """
    if not secret:
        raise ValueError("resume_link() needs a non-empty secret")
    if expires_in <= 0:
        raise ValueError(f"expires_in must be positive, got {expires_in}")
    claim = json.dumps(
        [execution_id, step, int(time.time()) + int(expires_in)], separators=(",", ":")
    ).encode()
    token = f"{_b64(claim)}.{_mac(secret, b'link.' + claim)}"
    return f"{base_url.rstrip('/')}/link/{token}"


def verify_link(token: str, secret: str | bytes, *, now: float | None = None) -> LinkClaim | str:
    """Check a resume link's token.

    Returns:
        The claim, or ``"forged"`` (bad signature or shape) or ``"expired"``.
    """
    body, _, mac = token.partition(".")
    try:
        claim = _unb64(body)
    except ValueError:
        return "forged"
    if not _same(_mac(secret, b"link." + claim), mac):
        return "forged"
    execution_id, step, expires = json.loads(claim)
    if (time.time() if now is None else now) > expires:
        return "expired"
    return LinkClaim(execution_id, step, expires)


def sign_webhook(secret: str | bytes, body: bytes, *, timestamp: int | None = None) -> str:
    """The ``X-Reactor-Signature`` header value for a webhook body (for senders and tests).

    Args:
        secret: The reactor's ``webhook_secret`` (or the app's ``secret``).
        body: The exact bytes of the request body.
        timestamp: Unix seconds to sign with (default: now).
    """
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_mac(secret, f'{t}.'.encode() + body)}"


def verify_webhook(
    secret: str | bytes, header: str | None, body: bytes, *, now: float | None = None
) -> Literal["ok", "missing", "forged", "stale"]:
    """Check a webhook's ``X-Reactor-Signature`` against ``secret``.

    Any of several ``v1=`` signatures may match (senders rotating secrets send two).

    Returns:
        ``"ok"``, ``"missing"`` (no header), ``"forged"`` (no signature matches, or the
        header is malformed) or ``"stale"`` (signed more than :data:`WEBHOOK_TOLERANCE`
        seconds away from now: a replay).
    """
    if not header:
        return "missing"
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return "forged"
    expected = _mac(secret, f"{timestamp}.".encode() + body)
    # Every candidate is compared, so timing does not tell which one matched.
    if not any([_same(expected, candidate) for candidate in signatures]):
        return "forged"
    if abs((time.time() if now is None else now) - timestamp) > WEBHOOK_TOLERANCE:
        return "stale"
    return "ok"
