"""One module per `callpulse` command (`add_arguments` + `run`), registered in `callpulse.cli`.

May import `engine`, `flows`, `api` and `callpulse.simulator`, inside the command's `run` (not at module
level): the CLI imports every command module to build `--help`.

What a command takes from the environment comes from one settings object, read once: `CliSettings`
(callpulse/settings.py), or `FlowConfig` / `ApiSettings` for `callpulse flow` / `callpulse api`.
"""
