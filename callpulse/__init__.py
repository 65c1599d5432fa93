"""The `callpulse` command-line entry point and local-process helpers."""
