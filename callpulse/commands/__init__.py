"""One module per `callpulse` command."""

import os

DEFAULT_REDIS_URL = "redis://localhost:6379/0"


def redis_url() -> str:
    return os.environ.get("CALLPULSE_REDIS_URL", DEFAULT_REDIS_URL)
