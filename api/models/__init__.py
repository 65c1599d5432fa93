"""Response and request models, by area; `from api import models; models.X` names any of them.

They document the bodies in the OpenAPI document (/docs). Most handlers return pre-serialised orjson
responses (the stats body is stored serialised by the flow), so a model costs no validation pass per
request; tests/test_api_contract.py checks every real response against the document instead.
"""

from api.models.stats import (  # noqa: F401
    OUTCOMES, LiveBlock, ContactsByStatus, BatchCounts, Outcomes, RetryBreakdown, Level, TimeWindow,
    StatsConfig, ContactBuckets, Contacts, Attempts, Rates, AbandonWindow, AbandonWindows, ForecastTrend,
    BreachForecast, Forecast, Pacing, Abandon, Performance, PassStats, RunStats, Callbacks, EmailRates,
    EmailStats, Costs, Diagnostics, StatsBody)
from api.models.ingest import (  # noqa: F401
    Rejection, LateNotice, IngestResult)
from api.models.campaigns import (  # noqa: F401
    CampaignSummary, CampaignList, CampaignDetail, DailyRow, DailyStats, Reply, RepliesPage)
from api.models.detail import (  # noqa: F401
    AttemptTrail, CallbackCounts, Contact, ContactsPage, TranscriptLine, Call, CallsPage, ConfigChange,
    ActivityEntry, ActivityPage, Batch, BatchesPage)
from api.models.org import (  # noqa: F401
    RateBenchmark, Benchmarks, UsageFigures, UsageRow, Plan, Usage)
from api.models.live import (  # noqa: F401
    LiveFrame, LevelAlert, ForecastAlert, AlertPayload, AlertsRecent, StreamTokenRequest, StreamToken,
    WindowSummary, ForecastWindow, AbandonSummary, OpenAlert, OrgLiveSummary, OrgLiveSnapshot)
from api.models.webhooks import (  # noqa: F401
    WebhookCreate, WebhookEndpoint, WebhookCreated, WebhookList, DeliveryAttempt, PendingDelivery, DeliveryLog)
