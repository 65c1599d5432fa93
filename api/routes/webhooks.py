"""`/v1/webhooks`: an org's webhook endpoints and their delivery logs (scope ``campaigns:manage``).

The handlers call api/webhook_store.py (the code `callpulse webhooks` runs) on a sync Redis client
in the thread pool. Another org's endpoint answers 404, exactly like a missing one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api import models
from api import webhook_store as store
from api.deps import ManagePrincipal, SettingsDep, SyncRedisDep

router = APIRouter(tags=["webhooks"])

WebhookId = Annotated[str, Path(pattern=store.ID_PATTERN, description="webhook id (wh_…)")]


async def own_or_404(client, webhook_id: str, org: str) -> dict:
    e = await run_in_threadpool(store.get_endpoint, client, webhook_id, org=org)
    if e is None:
        raise HTTPException(404, f"webhook {webhook_id!r} not found")
    return e


@router.post("/v1/webhooks", status_code=201, response_model=models.WebhookCreated)
async def create_webhook(body: models.WebhookCreate, p: ManagePrincipal, client: SyncRedisDep,
                         settings: SettingsDep):
    """Register an endpoint for the org's alerts. The signing secret is in this response only."""
    try:
        out = await run_in_threadpool(store.create_endpoint, client, org=p.org_id, url=body.url,
                                      secret=body.secret, kinds=body.kinds, allow=settings.webhook_allow)
    except ValueError as exc:  # a bad secret, or a URL the policy refuses (DestinationDenied)
        field = "secret" if str(exc).startswith("secret") else "url"
        raise RequestValidationError([{"loc": ("body", field), "msg": str(exc), "type": "value_error"}]) from None
    return JSONResponse(out, status_code=201)


@router.get("/v1/webhooks", response_model=models.WebhookList)
async def list_webhooks(p: ManagePrincipal, client: SyncRedisDep):
    """The org's endpoints (never their secrets)."""
    return {"webhooks": await run_in_threadpool(store.list_endpoints, client, p.org_id)}


@router.get("/v1/webhooks/{webhook_id}", response_model=models.WebhookEndpoint)
async def get_webhook(webhook_id: WebhookId, p: ManagePrincipal, client: SyncRedisDep):
    """One endpoint of the org (never its secret)."""
    return await own_or_404(client, webhook_id, p.org_id)


@router.delete("/v1/webhooks/{webhook_id}", status_code=204, response_class=Response)
async def delete_webhook(webhook_id: WebhookId, p: ManagePrincipal, client: SyncRedisDep):
    """Remove an endpoint, its delivery log and its scheduled deliveries."""
    if not await run_in_threadpool(store.remove_endpoint, client, webhook_id, org=p.org_id):
        raise HTTPException(404, f"webhook {webhook_id!r} not found")
    return Response(status_code=204)


@router.get("/v1/webhooks/{webhook_id}/deliveries", response_model=models.DeliveryLog)
async def list_webhook_deliveries(webhook_id: WebhookId, p: ManagePrincipal, client: SyncRedisDep,
                                  limit: int = Query(100, ge=1, le=1000),
                                  alert_id: str | None = Query(None, min_length=1, max_length=600)):
    """Deliveries still scheduled, and the logged attempts (newest first): time, status code or
    error, latency, next retry, and the state each attempt left the delivery in."""
    await own_or_404(client, webhook_id, p.org_id)
    pending = await run_in_threadpool(store.pending_deliveries, client, p.org_id, webhook_id)
    attempts = await run_in_threadpool(store.delivery_log, client, p.org_id, webhook_id, limit=limit,
                                       alert_id=alert_id)
    if alert_id is not None:
        pending = [x for x in pending if x["alert_id"] == alert_id]
    return {"webhook_id": webhook_id, "pending": pending, "attempts": attempts}
