"""Validation: an event from bytes to a validated, normalised dict, or its rejection (code, field, reason).

`events` is the public face (re-exports `parse_event`, `validate_event`, `EventRejected`, …); `validate`
holds the per-type field tables, `checkers` the field checkers, `body` splits an ingest body, `limits` and
`money` the SPEC's bounds and exact amounts, `rejection` the error type.
"""
