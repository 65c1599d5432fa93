"""callpulse domain engine: event validation, per-campaign metric state, Redis key layout.

Pure Python, no Bytewax, no HTTP, no wall clock: time comes in as event `ts`
values and as the watermark passed by the caller.
"""
