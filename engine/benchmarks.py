"""Old name of `engine.peer_percentiles` (it clashed with the top-level `benchmarks/` suite); re-exports it."""

from engine.peer_percentiles import BENCHMARK_RATES, benchmarks  # noqa: F401
