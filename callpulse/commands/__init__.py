"""One module per `callpulse` command (`add_arguments` + `run`), registered in `callpulse.cli`.

May import `engine`, `flows`, `api` and `callpulse.simulator`, inside the command's `run` (not at module
level): the CLI imports every command module to build `--help`.
"""

import os

DEFAULT_REDIS_URL = "redis://localhost:6379/0"


def redis_url() -> str:
    return os.environ.get("CALLPULSE_REDIS_URL", DEFAULT_REDIS_URL)
