"""The dialer/email simulator behind `callpulse simulate` and `callpulse demo` (docs/simulator.md).

Lives here: `generator` (`SimConfig`, `Simulator`, `generate`: the seeded,
deterministic event stream), `voice_campaign` / `email_campaign` (one
campaign each; `voice_calls`: one voice call's script), `campaign_base`, `call_window`, `faults` (jitter, duplicates,
malformed items) and `pacing` (`--speed`, the one part that reads the clock).

May import: `engine` (time-zone helpers) and the standard library. Never
`flows`, `api` or the rest of `callpulse`: tests and benchmarks use it as a
plain library, and writing its events anywhere is the caller's job.
"""

from callpulse.simulator.generator import SimConfig, Simulator, generate

__all__ = ["SimConfig", "Simulator", "generate"]
