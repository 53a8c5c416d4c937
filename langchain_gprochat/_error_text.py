"""How an error shows a server's message: bounded, with a note of what was cut."""

from __future__ import annotations

__all__ = ["ERROR_BODY_MAX", "SHOWN_MESSAGE_MAX", "html_title", "shown_text"]

SHOWN_MESSAGE_MAX = 500
"""Characters of a server's message shown in an exception's text; the rest is noted."""

ERROR_BODY_MAX = 16 * 1024
"""Bytes of an error body (after decompression) that the client reads at most."""


def html_title(html: str) -> str:
    """The ``<title>`` of an HTML page, whitespace collapsed, at most 120 characters."""
    lowered = html.lower()
    start = lowered.find("<title")
    start = lowered.find(">", start) + 1 if start != -1 else -1
    end = lowered.find("</title>", start) if start > 0 else -1
    return " ".join(html[start:end].split())[:120] if end != -1 else ""


def shown_text(server_message: str, body_truncated: bool = False) -> str:
    """A server's message as an exception shows it: bounded, with a note when cut."""
    if not server_message:
        return "(empty body)"
    shown = server_message
    notes: list[str] = []
    if len(shown) > SHOWN_MESSAGE_MAX:
        notes.append(f"{len(shown) - SHOWN_MESSAGE_MAX} more characters in `server_message`")
        shown = shown[:SHOWN_MESSAGE_MAX]
    if body_truncated:
        notes.append(f"the body was longer than {ERROR_BODY_MAX} bytes; only those were read")
    return f"{shown} [cut: {'; '.join(notes)}]" if notes else shown
