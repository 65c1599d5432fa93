"""Views: what is read from a campaign's state or from what the flow stored. The `/stats` body (`snapshot`),
detail records (`detail`, `detail_batch`, `message_detail`), daily rows (`daily`), the minute history
(`history`), peer percentiles (`peer_percentiles`), the follow-ups view's statuses (`due_statuses`) and the
activity log (`activity`)."""
