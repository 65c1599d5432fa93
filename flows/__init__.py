"""Bytewax dataflows and event sources/sinks (thin adapters around `engine`)."""
