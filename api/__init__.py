"""The FastAPI service (SPEC §4): REST, ingest, server-sent events, auth, the dashboard page.

Where things live (a newcomer's map; docs/api.md is the user-facing reference):
- ``settings.py``: ``ApiSettings``, the process's one settings object and the only reader of the environment
  in api/; ``app.py``: ``build_app(settings)`` (``create_app`` builds the settings first): middleware, error
  handlers, the routers, the OpenAPI patch (``openapi_doc.py``), and the lifespan that opens and closes
  ``resources.py`` (Redis clients, live hub, rate limits, webhook deliverer);
- ``routes/``: one ``APIRouter`` per area (ops, ingest, campaigns, detail, org, live, webhooks, dashboard);
- ``deps.py``: the ``Annotated`` dependencies routes declare (``RedisDep``, ``ReadPrincipal``, ``CampaignId``...);
- ``read_model/``: every Redis read the routes make; ``ingest.py``: the POST /v1/events path;
- ``models/``: request and response models by area (documentation; the contract test checks real bodies);
- ``live.py`` (the one pub/sub fan-out hub), ``live_shards.py`` (the hub on a Redis Cluster: sharded
  channels of the followed campaigns and orgs), ``live_streams.py`` and ``org_live.py`` (the SSE bodies),
  ``sse_cap.py`` (the cap on open SSE streams);
- ``auth.py``, ``stream_tokens.py``, ``rate_limit.py``, ``dataset_guard.py``, ``plans.py``, ``webhook_*.py``,
  ``metrics.py``, ``campaign_metrics.py``, ``sockets.py``, ``event_schema.py``, ``late_notice.py``. (Test
  helpers live in ``tests/support.py``, not here.)

What it may import: ``engine`` (key layout, events, domain rules: use them, never re-derive them) — yes.
``flows`` — only where it must share the flow's code: the Redis clients (``flows.redis_connect``), the ingest append (``flows.ingest_claims``), the
dataset marker (``flows.dataset``, in auth, webhook store, dataset guard) and the pub/sub message format the
sink writes (``flows.live_channel``, in the live hub). The CLI (``callpulse``) — never (it imports ``api``).
"""
