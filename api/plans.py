"""An org's plan (`callpulse orgs set-plan`) and the `plan` block of `GET /v1/usage` (docs/api.md).

Stored in Redis as one hash per org (`engine.storage.keys.plan_key`): name, email_limit, price_usd (the
decimal as written), updated_ms. The API reads it on every usage request; there is no cache.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal, InvalidOperation

from engine.storage.keys import plan_key

MAX_NAME = 200
_PRICE = re.compile(r"^\d{1,12}(\.\d{1,6})?$")  # dollars with up to micro-dollar precision


def check_plan(name: str, email_limit: int, price_usd: str) -> tuple[str, int, str]:
    """(name, limit, price as a canonical decimal string); ValueError saying what is wrong."""
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME:
        raise ValueError(f"--name must be 1-{MAX_NAME} characters")
    if isinstance(email_limit, bool) or not isinstance(email_limit, int) or email_limit < 0:
        raise ValueError("--email-limit must be an integer >= 0")
    price = str(price_usd).strip()
    if not _PRICE.match(price):
        raise ValueError("--price-usd must be a non-negative decimal number with at most 6 decimals, e.g. 49.99")
    try:
        canonical = format(Decimal(price).normalize(), "f")
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise ValueError("--price-usd is not a number") from None
    return name, email_limit, canonical


def set_plan(client, org_id: str, name: str, email_limit: int, price_usd: str) -> dict:
    """Store (replace) the org's plan with a synchronous client; returns what was stored."""
    name, email_limit, price = check_plan(name, email_limit, price_usd)
    record = {"name": name, "email_limit": str(email_limit), "price_usd": price,
              "updated_ms": str(int(time.time() * 1000))}
    key = plan_key(org_id)
    pipe = client.pipeline(transaction=True)
    pipe.delete(key)
    pipe.hset(key, mapping=record)
    pipe.execute()
    return {"org_id": org_id, "name": name, "email_limit": email_limit, "price_usd": float(price)}


def get_plan(client, org_id: str) -> dict | None:
    """The org's plan (synchronous client), or None."""
    return _parse(client.hgetall(plan_key(org_id)))


def clear_plan(client, org_id: str) -> bool:
    return bool(client.delete(plan_key(org_id)))


async def read_plan(r, org_id: str) -> dict | None:
    return _parse(await r.hgetall(plan_key(org_id)))


def _parse(raw: dict) -> dict | None:
    h = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
         for k, v in raw.items()}
    if "email_limit" not in h:
        return None
    return {"name": h.get("name"), "email_limit": int(h["email_limit"]), "price_usd": float(h.get("price_usd", 0))}


def plan_block(plan: dict | None, emails_sent: int | None) -> dict | None:
    """``{name, email_limit, price_usd, emails_remaining}``: remaining = limit - emails sent in the
    period, never below 0; None without a plan."""
    if plan is None:
        return None
    return {**plan, "emails_remaining": max(0, plan["email_limit"] - (emails_sent or 0))}
