"""The items that move between the dataflow's steps (docs/flow.md, *Shape*)::

    read ──(route, CampaignBatch)──exchange──> campaign ──(route, DeadLetter | Alert | Details | Frame)──> redis

Only `CampaignBatch` crosses workers (pickled, when the campaign lives on
another worker than the stream that held its events); the campaign step's
outputs go to the sink of the same worker. NamedTuples: they are tuples
(cheap to build, to unpack and to pickle) with names on their fields. The
entries of a batch stay plain ``(ref, raw)`` tuples, named by the `Entry`
alias only: a NamedTuple per entry made pickling a 1,000-event batch about
four times slower, where one `CampaignBatch` per item adds ~2 µs and ~30 bytes.
"""

from __future__ import annotations

import enum
from typing import NamedTuple, final

from engine.views.detail_batch import DetailBatch


class Mark(enum.Enum):
    """Raw values that are not event bytes (an enum member pickles by name, so identity survives the exchange)."""

    DUPLICATE = "duplicate"  # an ingest duplicate marker (docs/streams.md): counted, nothing applied


DUPLICATE_MARK = Mark.DUPLICATE


@final
class Repeat(NamedTuple):
    """A duplicate marker that carries the repeat (docs/streams.md): judged by `EventGate.check_repeat`."""

    raw: bytes


# What an ingest entry carries: the event's bytes; `DUPLICATE_MARK` (a marker written before markers carried
# the repeat); a `Repeat`; or None (an entry without an event field).
RawEvent = bytes | Mark | Repeat | None

# ``(ref, raw)``: ref names where the entry was read, ``"<partition>:<stream entry id>"`` or
# ``"file:<path>:<line>"`` (the dead-letter ``source``, and the key of its de-duplication).
Entry = tuple[str, RawEvent]


class CampaignBatch(NamedTuple):
    """One campaign's entries of one read, in read order (flows.routing.grouped). ``route`` is the
    campaign's key (`engine.storage.keys.route_key`), or `flows.routing.UNROUTABLE`."""

    route: str
    entries: list[Entry]


# The keyed item of the read step: ``(route, CampaignBatch)`` (Bytewax keys a stream by 2-tuples).
Routed = tuple[str, CampaignBatch]


@final
class DeadLetter(NamedTuple):
    """A rejected or late event: the record the sink writes to the dead-letter stream (docs/flow.md)."""

    record: dict


@final
class Alert(NamedTuple):
    """One record of `CampaignState.take_alerts()`, sent at once (never coalesced)."""

    org_id: str
    campaign_id: str
    record: dict


@final
class Details(NamedTuple):
    """The detail records changed since the campaign's previous frame (`CampaignState.take_details()`),
    sent just before that frame; the sink writes them with flows.detail_writer."""

    org_id: str
    campaign_id: str
    details: DetailBatch


@final
class Frame(NamedTuple):
    """The campaign's next frame: its ``seq``, the `/stats` body as JSON bytes (without ``seq``) and the
    event-time watermark of the campaign's gate (ms; None when the gate has none), which the sink
    stores beside the body for the ingest late notice (`engine.storage.keys.watermark_key`).

    Computed by the step from the body's dict, so that the sink decodes nothing (issue 24): ``history`` =
    ``(epoch minute, point JSON)``, the body's minute point (`engine.views.history`; None without ``as_of``);
    ``followups`` = the follow-ups view as JSON (`engine.state.followups`), only when it changed since the step's
    last one, else None."""

    org_id: str
    campaign_id: str
    seq: int
    body: bytes
    watermark: int | None = None
    history: tuple[int, bytes] | None = None
    followups: bytes | None = None


CampaignOutput = DeadLetter | Alert | Details | Frame
