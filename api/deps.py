"""Request dependencies, in FastAPI's ``Annotated`` style: a route names what it needs in its signature.

- ``RedisDep`` / ``SyncRedisDep``: the app's shared Redis clients, ``HubDep``: the live hub, ``LimitsDep``: the
  rate limits of POST /v1/events (all made and closed by the lifespan: ``ResourcesDep``, api/resources.py);
- ``SettingsDep``: the process's settings (api/settings.py); ``MetricsDep``: its Prometheus metrics;
- ``ReadPrincipal`` / ``WritePrincipal`` / ``ManagePrincipal``: an authenticated caller holding the
  scope ``campaigns:read`` / ``events:write`` / ``campaigns:manage`` (api/auth.py);
  ``StreamPrincipal``: SSE routes, which also open with a stream token (api/stream_tokens.py);
- ``CampaignId``: the ``{campaign_id}`` path parameter.

Everything is read from ``request.app.state``, so routes hold no closures over the app.
"""

from __future__ import annotations

from typing import Annotated

import redis as redis_sync
import redis.asyncio as aioredis
from fastapi import Depends, Header, Path, Request, Security
from fastapi.exceptions import HTTPException
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from api import stream_tokens
from api.auth import AuthError, Principal, authenticate, valid_org
from api.live import LiveHub
from api.metrics import ApiMetrics
from api.rate_limit import IngestLimits
from api.resources import Resources
from api.settings import ApiSettings

ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"


# the getters are coroutines: FastAPI awaits them in place (a plain function would take a thread-pool hop)
async def get_resources(request: Request) -> Resources:
    return request.app.state.resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_redis(resources: ResourcesDep) -> aioredis.Redis:
    return resources.redis


async def get_sync_redis(resources: ResourcesDep) -> redis_sync.Redis:
    """The sync client of the thread-pool work (ingest, webhook store), made by the lifespan."""
    return resources.sync_client()


async def get_hub(resources: ResourcesDep) -> LiveHub:
    return resources.hub


async def get_limits(resources: ResourcesDep) -> IngestLimits:
    return resources.ingest_limits


async def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings


async def get_metrics(request: Request) -> ApiMetrics:
    return request.app.state.metrics


RedisDep = Annotated[aioredis.Redis, Depends(get_redis)]
SyncRedisDep = Annotated[redis_sync.Redis, Depends(get_sync_redis)]
HubDep = Annotated[LiveHub, Depends(get_hub)]
LimitsDep = Annotated[IngestLimits, Depends(get_limits)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
CampaignId = Annotated[str, Path(pattern=ID_PATTERN, description="campaign id")]

# ---------------------------------------------------------------- auth

bearer = HTTPBearer(auto_error=False, description="org key `ak_…` or user token `pat_…` (with X-Org)")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


async def _dataset_whole(request: Request) -> None:
    # a wiped dataset has no API keys either: say so (503 + reason) before auth would say 401
    problem = await request.app.state.guard.problem(request.app.state.resources.redis)
    if problem:
        raise HTTPException(503, problem)


async def _principal(request: Request, creds: HTTPAuthorizationCredentials | None, x_org: str | None,
                     scope: str) -> Principal:
    await _dataset_whole(request)
    if creds is None and "token" in request.query_params or \
            creds is not None and stream_tokens.looks_like_stream_token(creds.credentials):
        raise AuthError(401, f"stream tokens open only {stream_tokens.SSE_ROUTES} (as ?token=); "
                             "other routes need an API key")
    authorization = f"Bearer {creds.credentials}" if creds is not None else None
    p = await authenticate(request.app.state.resources.redis, authorization, x_org,
                           dev_mode=request.app.state.settings.dev_mode)
    if scope not in p.scopes:
        raise AuthError(403, f"this key lacks the {scope!r} scope")
    return p


def _x_org_header(description: str):
    # the pattern is documented, not enforced by FastAPI (that would be its 422): `_check_x_org` answers 400
    return Header(description=description, json_schema_extra={"pattern": ID_PATTERN})


def _check_x_org(x_org: str | None) -> None:
    if x_org is not None and not valid_org(x_org):
        raise AuthError(400, "X-Org must be an org id: 1 to 128 characters of A-Z a-z 0-9 _ . : -")


def require(scope: str):
    """The dependency of a caller holding ``scope``: an API key (or a user token with X-Org)."""
    async def principal(request: Request, creds: Credentials,
                        x_org: Annotated[str | None, _x_org_header("org id (user tokens: required)")] = None,
                        ) -> Principal:
        _check_x_org(x_org)
        return await _principal(request, creds, x_org, scope)
    return principal


# `?token=`, declared as an OpenAPI security scheme (apiKey in query) beside the bearer key: the routes that take
# it list both, either one sufficing (api/openapi_doc.py adds their 400 for both at once)
stream_token = APIKeyQuery(name="token", scheme_name="StreamToken", auto_error=False, description=(
    "a stream token `st_…` from POST /v1/stream-tokens, for clients that cannot send headers (a browser "
    "EventSource): instead of Authorization, never with it (both: 400)"))
StreamToken = Annotated[str | None, Security(stream_token)]


async def stream_principal(
        request: Request, creds: Credentials, token: StreamToken,
        x_org: Annotated[str | None, _x_org_header("org id (user tokens)")] = None) -> Principal:
    """SSE routes: an API key (as ``ReadPrincipal``) or a stream token (api/stream_tokens.py)."""
    _check_x_org(x_org)
    if token is None and "token" not in request.query_params:
        return await _principal(request, creds, x_org, "campaigns:read")
    token = token or ""  # `?token=` empty: APIKeyQuery reads it as absent; it is a bad token (401)
    if creds is not None:
        raise AuthError(400, "send either Authorization or ?token=, not both")
    await _dataset_whole(request)
    return await stream_tokens.authenticate(request.app.state.resources.redis, token,
                                            dev_mode=request.app.state.settings.dev_mode,
                                            campaign_id=request.path_params.get("campaign_id"))


ReadPrincipal = Annotated[Principal, Depends(require("campaigns:read"))]
WritePrincipal = Annotated[Principal, Depends(require("events:write"))]
ManagePrincipal = Annotated[Principal, Depends(require("campaigns:manage"))]
StreamPrincipal = Annotated[Principal, Depends(stream_principal)]
