"""The messages the flow publishes on `engine.storage.keys.LIVE_CHANNEL`, and a reader that leaves frames encoded.

    frame: {"kind":"frame","org_id":<str>,"campaign_id":<str>,"seq":<int>,"frame":<the frame JSON>}
    alert: {"kind":"alert","org_id":<str>,"campaign_id":<str>,"alert":<the alert record JSON>}

Both are plain JSON (any reader may decode them whole), written with the
payload as the *last* member, so `split_frame` can cut a frame out as the
bytes the sink wrote, decoding only the short header before it. An API
process then forwards a frame to its SSE clients without decoding and
re-encoding it, and skips the frame entirely when nobody listens. (The header
cannot contain the byte sequence ``,"frame":``: quotes inside its JSON
strings are escaped.)

Imports nothing of the flow (orjson only): `api.live` reads with it.
"""

from __future__ import annotations

from typing import NamedTuple

import orjson

_FRAME_HEAD = b'{"kind":"frame",'
_FRAME_KEY = b',"frame":'


def frame_message(org_json: bytes, campaign_json: bytes, seq: int, frame: bytes) -> bytes:
    """The frame message; ids already JSON-encoded (the sink caches them per campaign)."""
    return b'{"kind":"frame","org_id":%b,"campaign_id":%b,"seq":%d,"frame":%b}' % (
        org_json, campaign_json, seq, frame)


def alert_message(org_json: bytes, campaign_json: bytes, alert_json: bytes) -> bytes:
    return b'{"kind":"alert","org_id":%b,"campaign_id":%b,"alert":%b}' % (org_json, campaign_json, alert_json)


class LiveFrame(NamedTuple):
    org_id: str
    campaign_id: str
    seq: int
    frame: bytes  # the frame JSON as published (the `/stats` body plus "seq")


def split_frame(data: bytes) -> LiveFrame | None:
    """A frame message cut into its header fields and its frame bytes; None for anything else (an
    alert, a header without org, campaign or seq: decode those whole). It relies on the layout of
    `frame_message`: the frame must be the message's last member."""
    if not data.startswith(_FRAME_HEAD) or not data.endswith(b"}"):
        return None
    cut = data.find(_FRAME_KEY)
    if cut < 0:
        return None
    try:
        head = orjson.loads(data[:cut] + b"}")
        org, camp, seq = head["org_id"], head["campaign_id"], head["seq"]
    except (orjson.JSONDecodeError, KeyError):
        return None
    if type(org) is not str or type(camp) is not str or type(seq) is not int:
        return None
    return LiveFrame(org, camp, seq, data[cut + len(_FRAME_KEY):-1])
