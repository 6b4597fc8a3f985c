"""The errors of the FIX layer, typed as poise's errors are (``poise.domain.errors``).

A garbled frame is not an error: the codec reports it as a value and the session
ignores it, as FIX asks. These are for callers: a field of an application message that
is missing or wrong, a send while no session is logged on, a store that cannot be used.
"""

from __future__ import annotations

from poise.domain.errors import PoiseError, StoreError, ValidationError

__all__ = ["FieldError", "FixError", "NotLoggedOnError", "SessionStoreError"]


def tag_label(tag: int) -> str:
    """``OrderQty(38)``: a tag as FIX documents name it, or ``Tag(9999)`` if unknown."""
    from poise.execute.fix.codec import Tag  # noqa: PLC0415 - the codec imports this module

    try:
        return f"{Tag(tag).name}({tag})"
    except ValueError:
        return f"Tag({tag})"


class FixError(PoiseError):
    """The FIX session cannot do what was asked (a session message handed in to be sent
    as an application message, a session already connected)."""

    exit_code = 11
    http_status = 503


class NotLoggedOnError(FixError):
    """An application message was handed in while the session is not logged on: it was
    neither stored nor sent, and no sequence number was used."""


class FieldError(ValidationError):
    """A field of a FIX message is missing or holds a value its type does not allow.

    ``tag`` names the field, so a reject can say which one.
    """

    def __init__(self, tag: int, text: str) -> None:
        self.tag = tag
        self.text = text
        super().__init__(f"{tag_label(tag)}: {text}")


class SessionStoreError(StoreError):
    """A session's store cannot be used: a record in the middle of its file does not
    read back, or another process holds it."""
