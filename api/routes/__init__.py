"""The API's routes, one `APIRouter` per area; `ROUTERS` is the order create_app includes them in.

- ``dashboard``: the static operator page (api/dashboard.html) at / and /campaigns/{id};
- ``ops``: /healthz, /readyz, /metrics;
- ``ingest``: POST /v1/events;
- ``campaigns``: campaign list, detail, stats, daily rows, email replies;
- ``detail``: drill-downs: contacts, calls, attempt report (CSV), export, batches, activity, email messages;
- ``timeline``: a campaign's minute points (history on open) and its follow-ups with their due times;
- ``org``: benchmarks, usage, recent alerts;
- ``live``: stream tokens and the SSE routes (the live hub itself is api/live.py);
- ``webhooks``: /v1/webhooks (alert webhook endpoints and delivery logs).

Routes are thin: they read through api/read_model/ and take what they need as dependencies (api/deps.py).
"""

from api.routes import campaigns, dashboard, detail, ingest, live, ops, org, timeline, webhooks

ROUTERS = (dashboard.router, ops.router, ingest.router, campaigns.router, detail.router, timeline.router, org.router,
           live.router, webhooks.router)
