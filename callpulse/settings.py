"""`CliSettings`: what the command line takes from the environment, read once per command.

Three objects read the environment, one per kind of process (docs/operations.md, *Settings*): `ApiSettings`
(api/settings.py) for `callpulse api`, `FlowConfig` (flows/config.py) for `callpulse flow`, and this one for the
other commands (`simulate`, `ingest`, `keys`, `orgs`, `webhooks`, `demo`, and the supervisor of `flow
--processes`): the Redis URL and whether it names a Redis Cluster, the ingest partitions, how long to wait out
a Redis outage, how many replicas confirm an ingest, and the webhook destinations allowed. What the commands
call (flows/, api/) gets these values as arguments and reads no environment itself.

The defaults are those of the settings they are made of (`DEFAULT_REDIS_URL`, `DEFAULT_PARTITIONS`,
`PatienceSettings`, `AckSettings`), defined once beside their users.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from engine.storage.keys import DEFAULT_PARTITIONS, PARTITIONS_SETTING, partitions_from
from flows.patience import PatienceSettings
from flows.redis_connect import CLUSTER_SETTING, DEFAULT_REDIS_URL, cluster_from
from flows.replica_ack import AckSettings

REDIS_URL_SETTING = "CALLPULSE_REDIS_URL"
WEBHOOK_ALLOW_SETTING = "CALLPULSE_WEBHOOK_ALLOW"


@dataclass(frozen=True)
class CliSettings:
    redis_url: str = DEFAULT_REDIS_URL  # CALLPULSE_REDIS_URL
    redis_cluster: bool | None = None  # CALLPULSE_REDIS_CLUSTER 1 / 0; None: ask Redis
    partitions: int = DEFAULT_PARTITIONS  # CALLPULSE_PARTITIONS (a command's --partitions wins)
    patience: PatienceSettings = PatienceSettings()  # CALLPULSE_RETRY_MAX_DELAY_S, _OUTAGE_NOTICE_S, _GIVE_UP_S
    ack: AckSettings = AckSettings()  # CALLPULSE_ACK_REPLICAS, CALLPULSE_ACK_TIMEOUT_MS
    webhook_allow: str = ""  # CALLPULSE_WEBHOOK_ALLOW: `callpulse webhooks add` judges URLs as the API does

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CliSettings:
        """The settings of ``env`` (default: this process's environment); ValueError naming a malformed one."""
        env = os.environ if env is None else env
        return cls(redis_url=env.get(REDIS_URL_SETTING, "").strip() or DEFAULT_REDIS_URL,
                   redis_cluster=cluster_from(env.get(CLUSTER_SETTING)),
                   partitions=partitions_from(env.get(PARTITIONS_SETTING)),
                   patience=PatienceSettings.from_mapping(env), ack=AckSettings.from_mapping(env),
                   webhook_allow=env.get(WEBHOOK_ALLOW_SETTING, ""))

    def connect(self, **kwargs):
        """A sync Redis client for these settings (flows/redis_connect.py: a cluster client on a cluster)."""
        from flows.redis_connect import connect

        return connect(self.redis_url, cluster=self.redis_cluster, **kwargs)

    def partitions_or(self, flag: int | None) -> int:
        """A command's ``--partitions``, else the setting."""
        return self.partitions if flag is None else flag


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this one's with ``extra`` set (passed to the child explicitly,
    rather than written into this process's environment)."""
    return {**os.environ, **extra}
