"""Request dependencies, in FastAPI's ``Annotated`` style: a route names what it needs in its signature.

- ``RedisDep`` / ``SyncRedisDep``: the app's shared Redis clients (made by the lifespan, api/app.py);
- ``SettingsDep``: what create_app was given (api/settings.py);
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
from api.settings import ApiSettings

ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"


def get_redis(request: Request) -> aioredis.Redis:
    return request.app.state.redis


async def get_sync_redis(request: Request) -> redis_sync.Redis:
    """The sync client of the thread-pool work (ingest, webhook store); made on first use, closed by the lifespan."""
    if request.app.state.sync_redis is None:
        from flows.redis_connect import connect

        request.app.state.sync_redis = connect(request.app.state.settings.redis_url)
    return request.app.state.sync_redis


def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings


RedisDep = Annotated[aioredis.Redis, Depends(get_redis)]
SyncRedisDep = Annotated[redis_sync.Redis, Depends(get_sync_redis)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
CampaignId = Annotated[str, Path(pattern=ID_PATTERN, description="campaign id")]

# ---------------------------------------------------------------- auth

bearer = HTTPBearer(auto_error=False, description="org key `ak_…` or user token `pat_…` (with X-Org)")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


async def _dataset_whole(request: Request) -> None:
    # a wiped dataset has no API keys either: say so (503 + reason) before auth would say 401
    problem = await request.app.state.guard.problem(request.app.state.redis)
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
    p = await authenticate(request.app.state.redis, authorization, x_org, dev_mode=request.app.state.dev_mode)
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
    return await stream_tokens.authenticate(request.app.state.redis, token, dev_mode=request.app.state.dev_mode,
                                            campaign_id=request.path_params.get("campaign_id"))


ReadPrincipal = Annotated[Principal, Depends(require("campaigns:read"))]
WritePrincipal = Annotated[Principal, Depends(require("events:write"))]
ManagePrincipal = Annotated[Principal, Depends(require("campaigns:manage"))]
StreamPrincipal = Annotated[Principal, Depends(stream_principal)]
