"""Response and request models, by area; `from api import models; models.X` names any of them.

They document the bodies in the OpenAPI document (/docs). Most handlers return pre-serialised orjson
responses (the stats body is stored serialised by the flow), so a model costs no validation pass per
request; tests/test_api_contract.py checks every real response against the document instead.
"""

from api.models.campaigns import CampaignDetail, CampaignList, CampaignSummary, DailyRow, DailyStats, RepliesPage, Reply  # noqa: F401
from api.models.detail import (  # noqa: F401
    AbandonRedialRecord,
    ActivityEntry,
    ActivityPage,
    AttemptTrail,
    Batch,
    BatchesPage,
    Call,
    CallbackCounts,
    CallingHoursRecord,
    CallsPage,
    ComplianceRecord,
    ConfigChange,
    Contact,
    ContactsPage,
    FollowedCall,
    TranscriptLine,
    ViolatingAttempt,
)
from api.models.ingest import IngestResult, LateNotice, Rejection  # noqa: F401
from api.models.live import (  # noqa: F401
    AbandonSummary,
    AlertPayload,
    AlertsRecent,
    ComplaintAlert,
    ForecastAlert,
    ForecastWindow,
    GuardAlert,
    LevelAlert,
    LiveFrame,
    OpenAlert,
    OrgLiveSnapshot,
    OrgLiveSummary,
    StreamToken,
    StreamTokenRequest,
    WindowSummary,
)
from api.models.messages import EmailMessage, MessagesPage  # noqa: F401
from api.models.org import Benchmarks, Plan, RateBenchmark, Usage, UsageFigures, UsageRow  # noqa: F401
from api.models.stats import (  # noqa: F401
    OUTCOMES,
    Abandon,
    AbandonWindow,
    AbandonWindows,
    AgentEntry,
    Agents,
    AgentsByState,
    AgentsPage,
    AgentTime,
    Attempts,
    BatchCounts,
    BreachForecast,
    Callbacks,
    ContactBuckets,
    Contacts,
    ContactsByStatus,
    Costs,
    Diagnostics,
    EmailRates,
    EmailStats,
    Forecast,
    ForecastTrend,
    Level,
    LiveBlock,
    Outcomes,
    Pacing,
    PassStats,
    Performance,
    Rates,
    RetryBreakdown,
    RunStats,
    StatsBody,
    StatsConfig,
    TimeWindow,
)
from api.models.timeline import (  # noqa: F401
    AbandonCount,
    CampaignFollowups,
    CampaignHistory,
    FollowupCounts,
    FollowupHour,
    FollowupStatus,
    HistoryPoint,
)
from api.models.webhooks import (  # noqa: F401
    DeliveryAttempt,
    DeliveryLog,
    PendingDelivery,
    WebhookCreate,
    WebhookCreated,
    WebhookEndpoint,
    WebhookList,
)
