"""Schemathesis hooks of tests/test_openapi_conformance.py (loaded with SCHEMATHESIS_HOOKS).

The SSE routes take two security schemes, a bearer key or a stream token (`?token=`), either one; schemathesis
fills every optional scheme, and the run sends the key (`--header Authorization`), so it would send a generated
token beside it, which the API refuses with its declared 400 (RFC 6750 §2: one way of sending credentials per
request). Dropping the generated token lets the run exercise the streams themselves; tokens are covered by
tests/test_stream_tokens.py and tests/test_api_contract.py.
"""

from __future__ import annotations

import schemathesis


@schemathesis.hook
def before_call(context, case, kwargs):
    """Every phase's requests (the coverage phase builds its cases without the `map_*` hooks)."""
    if case.query:
        case.query.pop("token", None)
