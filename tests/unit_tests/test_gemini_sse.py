"""The SSE reader of ``--backend gemini`` (pure: no sockets), under every split of its input."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from langchain_gprochat.server._gemini_sse import (
    MAX_EVENT_BYTES,
    GeminiError,
    SSEParser,
    error_message,
    event_text,
)


def _event(*texts: str, finish: str | None = None) -> dict[str, object]:
    candidate: dict[str, object] = {
        "content": {"parts": [{"text": t} for t in texts], "role": "model"},
        "index": 0,
    }
    if finish is not None:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "modelVersion": "m"}


def _stream(events: list[dict[str, object]], separator: bytes) -> bytes:
    return b"".join(
        b"data: " + json.dumps(e, ensure_ascii=False).encode() + separator for e in events
    )


def _read(data: bytes, cuts: list[int]) -> list[str]:
    parser = SSEParser()
    texts: list[str] = []
    bounds = [0, *sorted(set(cuts)), len(data)]
    for start, end in itertools.pairwise(bounds):
        texts += [event_text(event) for event in parser.feed(data[start:end])]
    texts += [event_text(event) for event in parser.close()]
    return texts


TEXTS = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=6)
SEPARATORS = st.sampled_from([b"\r\n\r\n", b"\n\n", b"\r\r"])


@given(texts=TEXTS, separator=SEPARATORS, data=st.data())
def test_any_split_gives_the_same_texts(
    texts: list[str], separator: bytes, data: st.DataObject
) -> None:
    events = [_event(text) for text in texts]
    stream = _stream(events, separator)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=len(stream)))
    assert _read(stream, cuts) == texts


@given(texts=TEXTS, separator=SEPARATORS)
def test_one_byte_at_a_time(texts: list[str], separator: bytes) -> None:
    stream = _stream([_event(text) for text in texts], separator)
    assert _read(stream, list(range(len(stream)))) == texts


def test_a_multi_byte_character_split_across_reads() -> None:
    stream = _stream([_event("é🙂")], b"\n\n")
    start = stream.index("🙂".encode())
    for cut in range(start, start + 4):
        assert _read(stream, [cut]) == ["é🙂"]


def test_sse_lines_other_than_data() -> None:
    parser = SSEParser()
    chunk = (
        b": a comment\n"
        b"event: message\nid: 7\nretry: 10\n"
        b'data: {"candidates":\ndata: [{"content":{"parts":[{"text":"x"}]}}]}\n\n'
        b"\n\n"  # blank lines without data: no event
    )
    assert parser.feed(chunk) == ['{"candidates":\n[{"content":{"parts":[{"text":"x"}]}}]}']
    assert parser.close() == []


def test_a_stream_ending_inside_an_event_is_refused() -> None:
    for tail in (b'data: {"candidates": []}', b'data: {"candidates": []}\n', b"\r\n\r"):
        parser = SSEParser()
        parser.feed(b'data: {"a": 1}\n\n' + tail)
        if tail == b"\r\n\r":
            assert parser.close() == []  # only line endings: nothing was cut
            continue
        with pytest.raises(GeminiError, match=r"^Gemini's answer ended inside an event$"):
            parser.close()


def test_a_final_lone_cr_ends_the_event() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"a": 1}\r\r') == []  # the last "\r" may be half of "\r\n"
    assert parser.close() == ['{"a": 1}']


def test_invalid_utf8_and_oversized_lines_are_refused() -> None:
    with pytest.raises(GeminiError, match=r"^Gemini sent an event that is not UTF-8$"):
        SSEParser().feed(b"data: \xff\n\n")
    with pytest.raises(GeminiError, match=r"^Gemini sent a line longer than"):
        SSEParser().feed(b"data: " + b"x" * MAX_EVENT_BYTES)


def test_event_text_joins_parts_and_skips_thoughts() -> None:
    event = _event("a", "b")
    event["candidates"][0]["content"]["parts"].append({"text": "hidden", "thought": True})  # type: ignore[index]
    event["candidates"].append(_event("second")["candidates"][0])  # type: ignore[attr-defined,index]
    assert event_text(json.dumps(event)) == "ab"
    assert event_text(json.dumps(_event("end", finish="STOP"))) == "end"
    assert event_text('{"usageMetadata": {"totalTokenCount": 3}}') == ""
    assert event_text('{"candidates": [{"finishReason": "STOP"}]}') == ""


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("nope", "Gemini sent a malformed event: not JSON"),
        ("[1]", "Gemini sent a malformed event: not a JSON object"),
        (
            '{"candidates": "x"}',
            "Gemini sent a malformed event: candidates is not a list of objects",
        ),
        (
            '{"candidates": [{"content": {"parts": 3}}]}',
            "Gemini sent a malformed event: content.parts is not a list",
        ),
        ('{"error": {"code": 500, "message": "Internal  error\\nhere"}}', "Internal error here"),
        ('{"error": {"code": 500}}', "Gemini answered with an error"),
        ('{"promptFeedback": {"blockReason": "SAFETY"}}', "Gemini blocked the prompt (SAFETY)"),
        (
            json.dumps(_event("x", finish="SAFETY")),
            "Gemini stopped the answer: finishReason SAFETY",
        ),
        (
            json.dumps(_event("x", finish="RECITATION")),
            "Gemini stopped the answer: finishReason RECITATION",
        ),
    ],
)
def test_event_text_refuses(data: str, message: str) -> None:
    with pytest.raises(GeminiError) as info:
        event_text(data)
    assert str(info.value) == message
    assert info.value.status is None


def test_error_message_shapes() -> None:
    assert error_message({"error": {"message": "Bad."}}) == "Bad."
    assert error_message([{"error": {"message": "In a list."}}]) == "In a list."
    assert error_message({"error": {"message": "  "}}) is None
    assert error_message({"error": "flat"}) is None
    assert error_message("text") is None
    assert error_message({"error": {"message": "x" * 3000}}) == "x" * 2000 + "…"
