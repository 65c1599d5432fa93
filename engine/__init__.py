"""callpulse domain engine: event validation, per-campaign metric state, Redis key layout.

Pure Python, no Bytewax, no HTTP, no wall clock, no environment: time comes in as event `ts`
values and as the watermark passed by the caller; settings come in as arguments (the partition count too:
`keys.partitions_from` parses the setting a process's settings object read). The engine imports
nothing from `flows/` or `api/` (they import it).

What lives here, by job:

* ingest events — `vocab` (statuses, outcomes, windows: one definition each), `limits`, `rejection`
  (EventRejected), `timefmt` (RFC 3339 / epoch ms), `money` (micro-dollars), `checkers` (field
  checkers), `validation` (field tables, `validate_event`), `body` (splitting an ingest body);
  `events` re-exports them all for existing imports;
* ordering — `gate` (duplicates and lateness), `fold` (gate + state for one process; its `gate_and_apply`
  is the flow's too);
* campaign state — `state` (CampaignState: attributes, watermark, dispatch) with its concerns in
  `state_contacts`, `state_attempts`, `state_email`, `state_alerts`, `state_details`,
  `state_extremes`, `state_grid`; value objects in `measures`; entities in `entities`,
  `contact_table`, `sealed` and `sealed_messages` (both on `sealed_base`; their row layouts in
  `sealed_layouts`), `runs`; configuration in `config`; windows in `windows`, `localtime`;
  older pickles in `state_upgrade`;
* derived views — `snapshot` (the /stats body), `detail_batch` (`DetailBatch`: the detail records the
  flow drains), `alerts` (levels), `forecast`, `daily`, `detail`, `activity`, `peer_percentiles`
  (`benchmarks` is its old name), `history` (a body's minute point),
  `followups` (the follow-up schedule by due minute, and its view; `due_statuses`: the part the API reads,
  without numpy);
* `keys` — the Redis key layout, the alert id (`AlertId`) and the partition count.
"""
