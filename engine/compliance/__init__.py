"""Compliance: the abandon and complaint alert levels (`levels`, SPEC §3 hysteresis), the abandon forecast and
pacing (`forecast`), and the calling-hours and abandon-redial guards with the 30-day periods (`guards`, a mixin
of the campaign state)."""
