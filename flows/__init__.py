"""The Bytewax dataflow and its connectors: ingest streams -> campaign step -> Redis (docs/flow.md).

Lives here: the dataflow (`dataflow`: its shape; `campaign_step`: the one
stateful step; `config`: `FlowConfig`; `messages`: the typed items between
the steps), its sources (`redis_source`, `file_source`, `routing`), its sink
(`redis_sink`, `live_channel`: the pub/sub message format), what keeps it
durable (`chunk_store`, `retirement`, `dataset`, `patience`, `lifecycle`,
`step_stats`, `key_layout`), and the ingest stream writer the ingest paths share
(`ingest_writer`).

May import: `engine` (the domain: parsing, gate, state, key layout), Bytewax,
redis, orjson and the standard library. Never `api` or `callpulse`: the API
and the CLI import from here (`api` uses `ingest_writer`, `dataset` and
`live_channel`), not the other way round. `live_channel`, `ingest_writer` and
`dataset` must not import Bytewax (the API process imports them).
"""
