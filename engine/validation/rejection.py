"""The rejection of an invalid event: `EventRejected` (machine code, dotted field path, reason) and the
helpers that build one for each code."""

from __future__ import annotations


class EventRejected(ValueError):
    """An event that fails validation.

    ``code`` is one of ``malformed``, ``missing_field``, ``invalid_type``,
    ``invalid_value``, ``unknown_type``, ``too_large``, ``future``; ``field``
    is the dotted path of the offending field (``None`` for a whole-event
    problem); ``reason`` is a human-readable sentence naming the field.
    """

    __slots__ = ("code", "field", "reason")

    def __init__(self, code: str, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.field = field
        self.reason = reason

    def as_dict(self) -> dict:
        return {"code": self.code, "field": self.field, "reason": self.reason}

    def __reduce__(self):  # picklable (e.g. across worker processes)
        return (type(self), (self.code, self.field, self.reason))

    def __repr__(self) -> str:
        return f"EventRejected({self.code!r}, {self.field!r}, {self.reason!r})"


def json_type(value: object) -> str:
    """JSON-ish name of a value's type, for reasons."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number (float)"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def show_value(value: object, limit: int = 40) -> str:
    """Short repr of a value for reasons (never echoes a huge value)."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def missing_field(field: str) -> EventRejected:
    return EventRejected("missing_field", field, f"field '{field}' is required")


def bad_type(field: str, expected: str, value: object) -> EventRejected:
    return EventRejected(
        "invalid_type", field, f"field '{field}' must be {expected}, got {json_type(value)}"
    )


def bad_value(field: str, why: str) -> EventRejected:
    return EventRejected("invalid_value", field, f"field '{field}' {why}")


def too_large(field: str, why: str) -> EventRejected:
    return EventRejected("too_large", field, f"field '{field}' {why}")
