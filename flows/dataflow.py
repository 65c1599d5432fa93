"""The production Bytewax dataflow: ingest streams -> one campaign-keyed step -> Redis.

    read (routed by campaign, batched) ──exchange──> campaign (parse, gate, state) ──> redis

- ``read``: `flows.redis_source.RedisStreamSource` (one partition per ingest
  stream) or, for recorded logs, `flows.file_source.NdjsonFileSource`. Each
  read is grouped by campaign (`flows.routing`): items ``(route,
  CampaignBatch(route, [(ref, raw), ...]))`` (`flows.messages`), one per
  campaign per read, so events cross workers once and in batches, as raw
  bytes. The route comes from the entry's ``k`` field (written by the ingest
  path), or from a decode in the source when a raw writer left it out.
- ``campaign``: `flows.campaign_step.CampaignLogic`, one per campaign: parses
  each event (`engine.validation.events.parse_event`; live mode: the ``future`` check),
  runs the campaign's `engine.state.gate.EventGate` (event_id de-dup, lateness) and
  applies it to the campaign's `engine.state.campaign.CampaignState`; emits dead
  letters for rejected and late events, alerts at once and coalesced frames.
- ``redis``: `flows.redis_sink.RedisSink` (idempotent writes).

Event ids are unique per org (SPEC §1). The ingest path (`callpulse ingest`,
``POST /v1/events``) de-duplicates them per org before they reach a stream;
the flow's gate de-duplicates per campaign (every retry of an event lands in
its campaign). Only an event_id reused across two campaigns of one org and
appended without the ingest path is counted once per campaign by the flow
(`callpulse replay` counts it once per org). See docs/flow.md.

Run it with ``callpulse flow`` (recovery, signals, workers), or directly:
``python -m bytewax.run "flows.dataflow:build(replay=True)" -w 2``.
"""

from __future__ import annotations

from bytewax import operators as op
from bytewax.dataflow import Dataflow

from flows.campaign_step import CampaignLogic
from flows.config import FlowConfig
from flows.file_source import NdjsonFileSource
from flows.redis_sink import RedisSink
from flows.redis_source import RedisStreamSource


def build_flow(cfg: FlowConfig) -> Dataflow:
    source: NdjsonFileSource | RedisStreamSource
    if cfg.files:
        source = NdjsonFileSource(list(cfg.files), count=cfg.read_count)
    else:
        source = RedisStreamSource(cfg.redis_url, partitions=cfg.partitions, count=cfg.read_count,
                                   idle_ms=cfg.idle_ms, until_drained=cfg.until_drained,
                                   retain_ms=cfg.retain_ms if cfg.recovery else 0, cluster=cfg.redis_cluster)

    flow = Dataflow("callpulse")
    routed = op.input("read", flow, source)  # (route, CampaignBatch): flows.messages
    out = op.stateful_batch("campaign", routed, lambda resume: CampaignLogic(cfg, resume))
    op.output("redis", out, RedisSink(cfg))
    return flow


def build(redis_url: str | None = None, **kwargs) -> Dataflow:
    """Factory for ``python -m bytewax.run "flows.dataflow:build(replay=True)"``; keywords = `FlowConfig` fields
    (the others from the environment, as for `callpulse flow`)."""
    if "files" in kwargs:
        kwargs["files"] = tuple(kwargs["files"])
    return build_flow(FlowConfig.from_env(redis_url=redis_url, **kwargs))
