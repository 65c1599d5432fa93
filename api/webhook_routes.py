"""`/v1/webhooks`: an org's webhook endpoints and their delivery logs (scope ``campaigns:manage``).

The handlers call api/webhook_store.py (the code `callpulse webhooks` runs) on a sync Redis client
in the thread pool. Another org's endpoint answers 404, exactly like a missing one.
"""

from __future__ import annotations

from typing import Optional

import redis as redis_sync
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api import models, webhook_store as store
from api.auth import Principal

WebhookId = Path(..., pattern=store.ID_PATTERN, description="webhook id (wh_…)")


def install(app: FastAPI, manage, redis_url: str) -> None:
    """Add the routes; ``manage`` is the app's auth dependency for the ``campaigns:manage`` scope."""

    def client(request: Request):
        if request.app.state.sync_redis is None:  # closed by the app's lifespan
            request.app.state.sync_redis = redis_sync.Redis.from_url(redis_url)
        return request.app.state.sync_redis

    async def own_or_404(request: Request, webhook_id: str, org: str) -> dict:
        e = await run_in_threadpool(store.get_endpoint, client(request), webhook_id, org=org)
        if e is None:
            raise HTTPException(404, f"webhook {webhook_id!r} not found")
        return e

    @app.post("/v1/webhooks", tags=["webhooks"], status_code=201, response_model=models.WebhookCreated)
    async def create_webhook(request: Request, body: models.WebhookCreate, p: Principal = Depends(manage)):
        """Register an endpoint for the org's alerts. The signing secret is in this response only."""
        try:
            out = await run_in_threadpool(store.create_endpoint, client(request), org=p.org_id, url=body.url,
                                          secret=body.secret, kinds=body.kinds)
        except ValueError as exc:  # a bad secret, or a URL the policy refuses (DestinationDenied)
            field = "secret" if str(exc).startswith("secret") else "url"
            raise RequestValidationError([{"loc": ("body", field), "msg": str(exc), "type": "value_error"}]) from None
        return JSONResponse(out, status_code=201)

    @app.get("/v1/webhooks", tags=["webhooks"], response_model=models.WebhookList)
    async def list_webhooks(request: Request, p: Principal = Depends(manage)):
        """The org's endpoints (never their secrets)."""
        return {"webhooks": await run_in_threadpool(store.list_endpoints, client(request), p.org_id)}

    @app.get("/v1/webhooks/{webhook_id}", tags=["webhooks"], response_model=models.WebhookEndpoint)
    async def get_webhook(request: Request, webhook_id: str = WebhookId, p: Principal = Depends(manage)):
        """One endpoint of the org (never its secret)."""
        return await own_or_404(request, webhook_id, p.org_id)

    @app.delete("/v1/webhooks/{webhook_id}", tags=["webhooks"], status_code=204, response_class=Response)
    async def delete_webhook(request: Request, webhook_id: str = WebhookId, p: Principal = Depends(manage)):
        """Remove an endpoint, its delivery log and its scheduled deliveries."""
        if not await run_in_threadpool(store.remove_endpoint, client(request), webhook_id, org=p.org_id):
            raise HTTPException(404, f"webhook {webhook_id!r} not found")
        return Response(status_code=204)

    @app.get("/v1/webhooks/{webhook_id}/deliveries", tags=["webhooks"], response_model=models.DeliveryLog)
    async def webhook_deliveries(request: Request, webhook_id: str = WebhookId,
                                 limit: int = Query(100, ge=1, le=1000),
                                 alert_id: Optional[str] = Query(None, min_length=1, max_length=600),
                                 p: Principal = Depends(manage)):
        """Deliveries still scheduled, and the logged attempts (newest first): time, status code or
        error, latency, next retry, and the state each attempt left the delivery in."""
        await own_or_404(request, webhook_id, p.org_id)
        c = client(request)
        pending = await run_in_threadpool(store.pending_deliveries, c, p.org_id, webhook_id)
        attempts = await run_in_threadpool(store.delivery_log, c, p.org_id, webhook_id, limit=limit,
                                           alert_id=alert_id)
        if alert_id is not None:
            pending = [x for x in pending if x["alert_id"] == alert_id]
        return {"webhook_id": webhook_id, "pending": pending, "attempts": attempts}
