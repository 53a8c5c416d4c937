"""Property-based tests (hypothesis) of the server: any request body gets a 4xx.

Random bytes, random JSON values and random shapes of a generate body are posted to one
server (started once for the module); every answer must be a 4xx with the JSON error
body ``{"error": {"message": ...}}``, never a 5xx, and the server must keep serving.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_gprochat.protocol import DEFAULT_SECRET_KEY, Turn, sign
from langchain_gprochat.server import GPROChatServer, echo_reply
from langchain_gprochat.server.validation import (
    HISTORY_MESSAGE,
    PASSWORD_MESSAGE,
    SIGNATURE_MESSAGE,
)

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TEXT = st.text(st.characters(exclude_categories=()), max_size=20)
JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        TEXT,
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def server() -> Iterator[GPROChatServer]:
    with GPROChatServer(passwords=("pw",)) as srv:
        yield srv


class Client:
    """One keep-alive HTTP/1.1 connection to the server, reopened if it was closed."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, body: bytes, path: str = "/api/generate") -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                self.conn.request("POST", path, body=body)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.RemoteDisconnected):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def client(server: GPROChatServer) -> Iterator[Client]:
    c = Client(server.port)
    yield c
    c.conn.close()


def assert_4xx(status: int, body: bytes) -> str:
    assert 400 <= status < 500, (status, body)
    error = json.loads(body)["error"]
    assert isinstance(error["message"], str)
    assert error["message"]
    return str(error["message"])


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_get_4xx(client: Client, body: bytes) -> None:
    status, answer = client.post(body)
    assert_4xx(status, answer)


@FUZZ
@given(JSON)
def test_random_json_values_get_4xx(client: Client, value: Any) -> None:
    status, answer = client.post(json.dumps(value).encode())
    assert_4xx(status, answer)


PARTS = st.one_of(
    JSON,
    st.lists(st.one_of(JSON, st.fixed_dictionaries({"text": st.one_of(TEXT, JSON)})), max_size=3),
)
WELL_FORMED_TURN = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "model"]),
        "parts": st.lists(st.fixed_dictionaries({"text": TEXT}), min_size=1, max_size=2),
    }
)
TURN = st.one_of(
    WELL_FORMED_TURN,
    st.fixed_dictionaries(
        {
            "role": st.one_of(st.sampled_from(["user", "model", "assistant", "system"]), JSON),
            "parts": PARTS,
        }
    ),
    JSON,
)
FIELDS = {
    "messages": st.one_of(
        st.lists(WELL_FORMED_TURN, min_size=1, max_size=4), st.lists(TURN, max_size=4), JSON
    ),
    "time": st.one_of(st.integers(), JSON),
    "pass": st.one_of(st.just("pw"), JSON),
    "sign": st.one_of(st.text("0123456789abcdef", min_size=64, max_size=64), JSON),
}
GENERATE_BODY = st.one_of(
    st.fixed_dictionaries(FIELDS, optional={"extra": JSON}),  # every field, odd values
    st.fixed_dictionaries({}, optional={**FIELDS, "extra": JSON}),  # fields missing too
)


@FUZZ
@given(GENERATE_BODY, st.booleans())
def test_random_generate_shapes_get_4xx(
    client: Client, body: dict[str, Any], sign_it: bool
) -> None:
    if sign_it and isinstance(body.get("time"), int) and isinstance(body.get("messages"), list):
        # Make the signature right where it can be, so deeper checks are reached too.
        last = body["messages"][-1] if body["messages"] else None
        parts = last.get("parts") if isinstance(last, dict) else None
        if isinstance(parts, list) and all(
            isinstance(p, dict) and isinstance(p.get("text"), str) for p in parts
        ):
            text = "".join(p["text"] for p in parts)
            body["sign"] = sign(body["time"], text, DEFAULT_SECRET_KEY)
    status, answer = client.post(json.dumps(body).encode())
    if status == 200:
        # Only a well-formed request with the right password and signature gets here.
        assert body.get("pass") == "pw"
        assert answer.decode().startswith("Echo · turn ")
        return
    message = assert_4xx(status, answer)
    if status == 401:
        assert message in (PASSWORD_MESSAGE, SIGNATURE_MESSAGE)


def test_server_still_serves_after_fuzzing(client: Client, server: GPROChatServer) -> None:
    turns = [{"role": "user", "parts": [{"text": "still there? ✓"}]}]
    body = {
        "messages": turns,
        "time": 1,
        "pass": "pw",
        "sign": sign(1, "still there? ✓", DEFAULT_SECRET_KEY),
    }
    status, answer = client.post(json.dumps(body, ensure_ascii=False).encode())
    assert (status, answer.decode()) == (200, echo_reply([Turn.model_validate(turns[0])]))
    assert all(400 <= status < 500 or status == 200 for status in server.stats.statuses)
    assert server.stats.active_streams == 0


def test_history_rule_message_is_exact(client: Client) -> None:
    status, answer = client.post(b'{"messages": []}')
    assert (status, assert_4xx(status, answer)) == (400, HISTORY_MESSAGE)
