"""Move a Redis dataset written with key layout 1 (raw ids) to layout 2 (ids escaped, `engine.storage.keys`).

Layout 1 put ids into keys as they are, so an id holding ``:`` made keys
ambiguous: org ``t1`` campaign ``a:b`` and org ``t1:a`` campaign ``b`` shared
``{t1:a:b}``. Ids without ``:`` escape to themselves, so their keys do not
change and nothing is done for them. For the others (docs/streams.md):

- a key whose campaign tag ``{x:y:z}`` fits exactly one campaign that the
  org campaign sets know is renamed to that campaign's layout-2 name (no
  other tenant ever wrote there);
- a key whose tag fits two known campaigns (they really shared it: mixed
  data) or none is deleted; the flow rewrites each campaign it holds in its
  state (body and every detail record) when it resumes from a layout-1
  snapshot (`flows.campaign_step.CampaignLogic`);
- org-tagged keys with ``:`` in the org id are renamed; transcript keys of
  attempt ids holding ``:`` are renamed;
- ingest de-dup markers (``seen:``, one-hour expiry) are left to expire.

`migrate` runs in ``callpulse flow`` before the dataflow starts and records
``callpulse:layout`` = 2, so it runs once per dataset.
"""

from __future__ import annotations

import sys

import redis

from engine.storage.keys import LAYOUT_KEY, LAYOUT_VERSION, PREFIX, key_part

CAMPAIGN_FAMILIES = ("stats", "frames", "alerts", "alert-ids", "contacts", "contact-index", "attempts",
                     "contact-profiles", "contact-attempts", "archive",
                     "attempt-index", "transcript", "batches", "daily", "replies", "reply-index")
ORG_FAMILIES = ("campaigns", "org-alerts", "org-alert-ids")


def _split(key: str) -> tuple[str, str, str] | None:
    """(family, tag content, rest after the tag) of ``callpulse:<family>:{<tag>}<rest>``."""
    head = f"{PREFIX}:"
    if not key.startswith(head):
        return None
    family, sep, tail = key[len(head):].partition(":")
    if not sep or not tail.startswith("{") or "}" not in tail:
        return None
    tag, _, rest = tail[1:].partition("}")
    return family, tag, rest


def _known_campaigns(client) -> set[tuple[str, str]]:
    known: set[tuple[str, str]] = set()
    for raw in client.scan_iter(match=f"{PREFIX}:campaigns:{{*}}", count=1000):
        parts = _split(raw.decode())
        if parts is None:
            continue
        org = parts[1]  # layout 1: the raw org id
        known.update((org, m.decode()) for m in client.smembers(raw))
    return known


def _candidates(tag: str) -> list[tuple[str, str]]:
    """Every (org, campaign) whose layout-1 tag ``org:campaign`` is ``tag``."""
    return [(tag[:i], tag[i + 1:]) for i, ch in enumerate(tag) if ch == ":" and 0 < i < len(tag) - 1]


def _new_name(family: str, org: str, camp: str | None, rest: str) -> str:
    tag = f"{key_part(org)}:{key_part(camp)}" if camp is not None else key_part(org)
    if family == "transcript" and rest.startswith(":"):
        rest = ":" + key_part(rest[1:])
    return f"{PREFIX}:{family}:{{{tag}}}{rest}"


def plan(client) -> tuple[list[tuple[str, str]], list[str]]:
    """The renames ``(old, new)`` and deletions that take this dataset to layout 2."""
    known = _known_campaigns(client)
    renames, deletes = [], []
    for raw in client.scan_iter(match=f"{PREFIX}:*", count=1000):
        key = raw.decode()
        parts = _split(key)
        if parts is None:
            continue
        family, tag, rest = parts
        if family in ORG_FAMILIES:
            if ":" in tag:
                renames.append((key, _new_name(family, tag, None, rest)))
            continue
        if family not in CAMPAIGN_FAMILIES:
            continue
        cands = _candidates(tag)
        if len(cands) == 1 and not (family == "transcript" and ":" in rest[1:]):
            continue  # no ':' in either id: the layout-2 name is the same
        fits = [c for c in cands if c in known]
        if len(fits) == 1:
            new = _new_name(family, fits[0][0], fits[0][1], rest)
            if new != key:
                renames.append((key, new))
        else:
            deletes.append(key)
    return renames, deletes


def migrate(client) -> str | None:
    """Bring the dataset to LAYOUT_VERSION; returns a one-line summary when something was done."""
    current = client.get(LAYOUT_KEY)
    if current is not None and int(current) >= LAYOUT_VERSION:
        return None
    renames, deletes = plan(client)
    for old, new in renames:
        try:
            client.rename(old, new)
        except redis.ResponseError:  # gone meanwhile
            pass
    if deletes:
        client.delete(*deletes)
    client.set(LAYOUT_KEY, LAYOUT_VERSION)
    if renames or deletes:
        msg = (f"callpulse flow: key layout {LAYOUT_VERSION}: renamed {len(renames)} key(s), deleted "
               f"{len(deletes)} ambiguous key(s) (rewritten from the flow's state)")
        print(msg, file=sys.stderr, flush=True)
        return msg
    return None
