"""The flow's pub/sub messages (flows/live_channel.py): plain JSON, and a frame reader that leaves the frame
as the sink wrote it."""

from __future__ import annotations

import orjson
import pytest

from flows.live_channel import alert_message, frame_message, split_frame

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("org,camp", [("o1", "c1"), ('o,"frame":{}', 'c"}'), ("ö\x1f", "\\")])
def test_a_frame_message_is_json_and_splits_into_its_header_and_its_exact_frame_bytes(org, camp):
    frame = b'{"status":"active","note":",\\"frame\\":1","seq":7}'
    msg = frame_message(orjson.dumps(org), orjson.dumps(camp), 7, frame)
    assert orjson.loads(msg) == {"kind": "frame", "org_id": org, "campaign_id": camp, "seq": 7,
                                 "frame": orjson.loads(frame)}
    live = split_frame(msg)
    assert live == (org, camp, 7, frame) and live.frame is not None


def test_anything_but_a_flow_frame_message_is_left_to_a_whole_decode():
    alert = alert_message(b'"o1"', b'"c1"', b'{"alert_id":"o1:c1:30d:1","frame":1}')
    assert orjson.loads(alert)["alert"]["frame"] == 1
    frame_first = orjson.dumps({"kind": "frame", "frame": {}, "seq": 1, "org_id": "o1", "campaign_id": "c1"})
    for data in (alert, frame_first, b'{"kind":"frame","org_id":"o1"}', b"not json", b'{"kind":"frame",',
                 b'{"kind":"frame","org_id":1,"campaign_id":"c","seq":1,"frame":{}}',
                 b'{"kind":"frame","org_id":"o","campaign_id":"c","seq":"1","frame":{}}'):
        assert split_frame(data) is None, data


def test_the_api_hub_forwards_the_published_frame_bytes_and_still_reads_other_layouts():
    from api.live import LiveHub

    hub = LiveHub(None)
    sub = hub.add_campaign("o1", "c1")
    frame = b'{"status":"active","x":1.5,"seq":7}'
    hub.dispatch(frame_message(b'"o1"', b'"c1"', 7, frame))
    assert sub.frame == (7, frame)
    hub.dispatch(frame_message(b'"o1"', b'"other"', 9, frame))  # nobody listens to that campaign
    assert sub.frame == (7, frame)
    # a writer of its own, frame not last: decoded whole, as before
    hub.dispatch(orjson.dumps({"kind": "frame", "frame": {"seq": 8}, "org_id": "o1", "campaign_id": "c1", "seq": 8}))
    assert sub.frame == (8, b'{"seq":8}')
