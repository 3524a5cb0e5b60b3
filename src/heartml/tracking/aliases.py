"""Moving the champion aliases safely when several processes promote at once.

The registry has no lock and no compare-and-set: an alias is set and deleted per model,
unconditionally. Two promoting processes therefore collide in two ways, both measured by
tests/integration/test_promotion_race.py (two processes, 20 rounds, PostgreSQL-backed server):
- both insert the same alias on one model at once: one insert fails on the unique key;
- one deletes, from a model it read a moment ago, the alias the other has just set there:
  no champion at all (about one round in ten before this module).
The way out: every promotion first records `promoted_at` on its version; the latest promotion
is the champion and the one before it `champion_previous`. Every process steers the registry to
that state and stops only after a read that needs no change, so the last one to act also
confirms the final state.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from heartml.errors import TrackingError
from heartml.tracking.versions import VersionTag

SETTLE_ATTEMPTS = 20
# How the stores word a unique-key clash (PostgreSQL, SQLite, MLflow's own message).
_CONCURRENT_INSERT = ("duplicate key", "unique constraint", "already exists")


def set_alias(client: Any, name: str, alias: str, version: str) -> None:
    """set_registered_model_alias, safe against another process setting the same alias: once
    the other's row exists, trying again updates it, as a lone writer would have."""
    for attempt in range(3):
        try:
            client.set_registered_model_alias(name, alias, version)
            return
        except Exception as exc:
            text = str(exc).lower()
            if attempt == 2 or not any(marker in text for marker in _CONCURRENT_INSERT):
                raise


def promotion_order(client: Any, model_names: Iterable[str]) -> list[Any]:
    """Every version of the models that was ever promoted, the latest promotion first."""
    promoted = []
    for name in model_names:
        versions = client.search_model_versions(f"name='{name}'")
        promoted += [v for v in versions if (v.tags or {}).get(VersionTag.PROMOTED_AT)]
    return sorted(promoted, key=lambda v: v.tags[VersionTag.PROMOTED_AT], reverse=True)


def settle(
    client: Any,
    model_names: list[str],
    holders: Callable[[str], list[Any]],
    alias: str,
    previous_alias: str,
) -> None:
    """Put `alias` on the latest promotion and `previous_alias` on the one before, take them
    off every other model; repeat until one read finds nothing to change."""
    for _ in range(SETTLE_ATTEMPTS):
        order = promotion_order(client, model_names)
        # Without a second recorded promotion (a registry older than the tag), the previous
        # alias stays where the caller put it.
        wanted = dict(zip((alias, previous_alias), order[:2], strict=False))
        changed = False
        for name, version in wanted.items():
            found = holders(name)
            if not any(
                (h.name, str(h.version)) == (version.name, str(version.version)) for h in found
            ):
                set_alias(client, version.name, name, str(version.version))
                changed = True
            for holder in found:
                if holder.name != version.name:
                    client.delete_registered_model_alias(holder.name, name)
                    changed = True
        if not changed:
            return
        time.sleep(random.uniform(0.01, 0.1))  # let the other writer finish its step
    raise TrackingError(
        f"the {alias} alias did not settle after {SETTLE_ATTEMPTS} attempts: "
        "other promotions keep moving it"
    )
