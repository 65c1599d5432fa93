"""The `callpulse` command line and what only it drives (docs/architecture.md).

Lives here: `cli` (the entry point), `commands/` (one module per command),
`simulator/` (the dialer/email simulator behind `simulate` and `demo`; tests
and benchmarks use it too), `event_files` (NDJSON input) and `redis_local`
(a local redis-server for `demo` and the tests).

May import: `engine`, `flows`, `api` (the commands wire them together) —
lazily, inside each command, so `callpulse --help` stays fast. Nothing in
`engine`, `flows` or `api` imports from here.
"""
