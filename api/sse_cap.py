"""The cap on one API process's open SSE streams (docs/api.md, *Connection cap*).

Every SSE route (``/v1/campaigns/{id}/live``, ``/v1/live``, ``/v1/alerts``) takes a slot before its
stream starts; past the cap the answer is **503** with ``Retry-After``, so that a load balancer (or the
client) tries another API process, or this one a little later. A slot is given back when the response
ends, however it ends (client gone, stalled client cut off, server shutdown, an error), and, should the
response never run at all, when it is dropped.
"""

from __future__ import annotations

from sse_starlette.sse import EventSourceResponse

RETRY_AFTER_S = 5


class SseCap:
    """How many SSE streams this process has open, against its cap (`ApiSettings.sse_max_connections`,
    ``CALLPULSE_SSE_MAX_CONNECTIONS``; one event loop: no lock needed)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.open = 0
        self.refused = 0

    def take(self) -> Slot | None:
        if self.open >= self.limit:
            self.refused += 1
            return None
        self.open += 1
        return Slot(self)


class Slot:
    __slots__ = ("cap", "held")

    def __init__(self, cap: SseCap):
        self.cap = cap
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.cap.open -= 1

    def __del__(self):
        self.release()


class CappedEventSourceResponse(EventSourceResponse):
    """An `EventSourceResponse` holding a slot of the cap until it has ended."""

    slot: Slot | None = None

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.slot is not None:
                self.slot.release()
