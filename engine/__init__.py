"""callpulse domain engine: event validation, per-campaign metric state, Redis key layout.

Python (compiled with Cython at set-up, the source kept as the reference: `compiled`), no Bytewax, no HTTP,
no wall clock, no environment (but the one switch `compiled` reads): time comes in as event `ts`
values and as the watermark passed by the caller; settings come in as arguments (the partition count too:
`keys.partitions_from` parses the setting a process's settings object read). The engine imports
nothing from `flows/` or `api/` (they import it).

What lives here, by sub-package (each ``__init__`` says more):

* `validation` — an event from bytes to a validated, normalised dict or its rejection: `events` (the
  public face: `parse_event`, `validate_event`, `EventRejected`), `validate` (field tables), `checkers`,
  `body` (splitting an ingest body), `limits`, `money`, `rejection`;
* `state` — the campaign's metric state and its fold: `campaign` (`CampaignState`), `parts` (which
  attributes each part owns), its mixins `contacts`, `attempts`, `email`, `alert_levels`, `details`,
  `extremes`; the values it keeps (`entities`, `measures`, `windows`, `config`, `runs`, `followups`,
  `grid`); `gate` (duplicates and lateness) and `fold` (gate, then apply); `upgrade` (release-1 states);
* `compliance` — alert levels (`levels`), the abandon forecast (`forecast`), the calling-hours and
  abandon-redial guards and 30-day periods (`guards`, a mixin of the state);
* `storage` — how a state is kept and written: contact columns (`contact_table`, `contact_blocks`,
  `id_rows`), sealed rows (`sealed_base`, `sealed_layouts`, `sealed`, `sealed_messages`), the recovery
  format (`recovery_format`, `recovery_inspect`), and the Redis key layout (`keys`);
* `views` — what is read: the /stats body (`snapshot`), detail records (`detail`, `detail_batch`,
  `message_detail`), `daily`, `history`, `peer_percentiles`, `due_statuses`, `activity`;
* at the top, shared by all: `vocab` (statuses, outcomes, windows: one definition each), `timefmt`
  (RFC 3339 / epoch ms), `localtime` (zones, calendar, dialing windows); `compiled`, which build of the engine
  a process imports (docs/architecture.md, *The compiled engine*).
"""

# Before any other engine module: run the compiled build of the engine, or its pure-Python source when
# that is asked for or the build is missing or stale (engine/compiled.py).
from engine import compiled as _compiled

_compiled.activate()
