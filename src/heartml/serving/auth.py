"""The admin key (HEARTML_SERVE_ADMIN_API_KEY), sent as the X-API-Key header."""

from __future__ import annotations

import hmac

from fastapi import HTTPException
from pydantic import SecretStr


def check_admin_key(configured: SecretStr | None, given: str | None) -> None:
    """401 unless `given` is the configured key (compared in constant time); a route decides
    what an unconfigured key means (/admin/reload: no such route; /feedback: open)."""
    if configured is None:
        return
    expected = configured.get_secret_value().encode()
    if given is None or not hmac.compare_digest(given.encode(), expected):
        raise HTTPException(401, "missing or wrong X-API-Key", {"WWW-Authenticate": "ApiKey"})
