from __future__ import annotations

import json

import pytest
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_gprochat._convert import messages_to_prompt, messages_to_turns
from langchain_gprochat._tools import TOOL_ERROR_TEMPLATE, TOOL_RESULT_TEMPLATE
from langchain_gprochat.protocol import (
    DEFAULT_SECRET_KEY,
    GenerateRequest,
    Part,
    RequestEncoder,
    Turn,
    parse_error_body,
    sign,
    turn_text,
    well_formed,
)

KEY = "2BC120D4-BB36-1B60-26DE-DB630472A3D8"


@pytest.mark.parametrize(
    ("time_ms", "text", "secret", "expected"),
    [
        (
            1700000000000,
            "Hello",
            KEY,
            "909e9602040e341e0c5d3ec56df0e97028df882853691a741e8c62b922149d56",
        ),
        (
            1732435200123,
            "Привет, мир 🌍",
            KEY,
            "9221fc9c9c6596357d40e4f588a01538978b971a77d833981b4a70971c20d46d",
        ),
        (
            1700000000000,
            "",
            KEY,
            "893a906fb4df7e8b9de528127d943de0dcfe60a2b32364444754cca53927561f",
        ),
        (
            1700000000000,
            "line1\nline2",
            "my-own-secret",
            "aae2452eb14d3cfc380ca63e8b0926a20247e07c18a4627a5f95500afbcfd5ec",
        ),
        (
            1700000000000,
            "Hello",
            "",
            "25252ce63a1e8e910eb1e6a83844ff41c9267376bb407c06e89e0f527dac4c35",
        ),
    ],
)
def test_signature_vectors(time_ms: int, text: str, secret: str, expected: str) -> None:
    assert sign(time_ms, text, secret) == expected


def test_default_secret_key_is_gprochat_com() -> None:
    assert DEFAULT_SECRET_KEY == KEY


def _pairs(turns: list[Turn]) -> list[tuple[str, str]]:
    return [(t.role, turn_text(t)) for t in turns]


def test_roles_map_and_alternate() -> None:
    turns = messages_to_turns(
        [HumanMessage("Hi"), AIMessage("Hello! How can I help?"), HumanMessage("Tell me a joke")]
    )
    assert _pairs(turns) == [
        ("user", "Hi"),
        ("model", "Hello! How can I help?"),
        ("user", "Tell me a joke"),
    ]


def test_consecutive_turns_of_one_role_are_merged() -> None:
    turns = messages_to_turns(
        [HumanMessage("a"), HumanMessage("b"), AIMessage("c"), AIMessage("d"), HumanMessage("e")]
    )
    assert _pairs(turns) == [("user", "a\n\nb"), ("model", "c\n\nd"), ("user", "e")]


def test_system_folds_into_first_user_turn() -> None:
    turns = messages_to_turns(
        [SystemMessage("Be brief."), HumanMessage("Hi"), AIMessage("Yo"), HumanMessage("Q")]
    )
    assert _pairs(turns)[0] == (
        "user",
        "[System instructions]\nBe brief.\n[End of system instructions]\n\nHi",
    )
    assert len(turns) == 3


def test_several_system_messages_are_joined() -> None:
    turns = messages_to_turns([SystemMessage("A"), HumanMessage("x"), SystemMessage("B")])
    assert _pairs(turns) == [
        ("user", "[System instructions]\nA\n\nB\n[End of system instructions]\n\nx")
    ]


def test_system_before_ai_first_becomes_own_user_turn() -> None:
    turns = messages_to_turns([SystemMessage("S"), AIMessage("Hello"), HumanMessage("Q")])
    assert _pairs(turns) == [("user", "S"), ("model", "Hello"), ("user", "Q")]


def test_text_blocks_and_strings_in_lists() -> None:
    msg = HumanMessage(content=[{"type": "text", "text": "a"}, "b", {"type": "text", "text": "c"}])
    assert _pairs(messages_to_turns([msg])) == [("user", "abc")]


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.png"}},
        {"type": "image", "source_type": "base64", "data": "AAAA", "mime_type": "image/png"},
        {"type": "audio", "base64": "AAAA", "mime_type": "audio/wav"},
        {"type": "file", "base64": "AAAA", "mime_type": "application/pdf"},
    ],
)
def test_non_text_blocks_are_rejected(block: dict[str, object]) -> None:
    msg = HumanMessage(content=[{"type": "text", "text": "look"}, block])
    with pytest.raises(ValueError, match="takes text only") as info:
        messages_to_turns([msg])
    assert repr(block["type"]) in str(info.value)


def test_empty_conversation_is_rejected() -> None:
    with pytest.raises(ValueError, match="has no user or AI message"):
        messages_to_turns([])
    with pytest.raises(ValueError, match="has no user or AI message"):
        messages_to_turns([SystemMessage("only system")])


def test_last_turn_must_be_user() -> None:
    with pytest.raises(ValueError, match="last message must be the user's"):
        messages_to_turns([HumanMessage("q"), AIMessage("a")])


def test_conversation_must_not_start_with_model() -> None:
    with pytest.raises(ValueError, match="starts with an AI message"):
        messages_to_turns([AIMessage("hello"), HumanMessage("q")])


def test_tool_calls_and_results_render_as_text() -> None:
    turns = messages_to_turns(
        [
            HumanMessage("weather?"),
            AIMessage(
                "Let me check.",
                tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}],
            ),
            ToolMessage("18°C", tool_call_id="c1"),
            ToolMessage("boom", tool_call_id="c2", name="other", status="error"),
        ]
    )
    assert _pairs(turns) == [
        ("user", "weather?"),
        (
            "model",
            'Let me check.\n{"tool_calls": [{"name": "get_weather", '
            '"arguments": {"city": "Paris"}}]}',
        ),
        (
            "user",
            TOOL_RESULT_TEMPLATE.format(name="get_weather", id="c1", content="18°C")
            + "\n\n"
            + TOOL_ERROR_TEMPLATE.format(name="other", id="c2", content="boom"),
        ),
    ]


def test_function_and_chat_messages() -> None:
    turns = messages_to_turns(
        [
            ChatMessage(role="user", content="u"),
            ChatMessage(role="assistant", content="a"),
            FunctionMessage(name="f", content="r"),
        ]
    )
    assert _pairs(turns) == [
        ("user", "u"),
        ("model", "a"),
        ("user", TOOL_RESULT_TEMPLATE.format(name="f", id="f", content="r")),
    ]
    with pytest.raises(ValueError, match="ChatMessage role 'critic' is not supported"):
        messages_to_turns([ChatMessage(role="critic", content="x")])


def test_unsupported_message_type() -> None:
    with pytest.raises(ValueError, match="RemoveMessage cannot be sent"):
        messages_to_turns([RemoveMessage(id="1")])


def test_max_history_messages_keeps_latest_and_system() -> None:
    msgs = [
        SystemMessage("S"),
        HumanMessage("1"),
        AIMessage("2"),
        HumanMessage("3"),
        AIMessage("4"),
        HumanMessage("5"),
    ]
    assert _pairs(messages_to_turns(msgs, max_history_messages=3)) == [
        ("user", "[System instructions]\nS\n[End of system instructions]\n\n3"),
        ("model", "4"),
        ("user", "5"),
    ]
    # A cut that would start with the model drops that turn too.
    assert _pairs(messages_to_turns(msgs[1:], max_history_messages=2)) == [("user", "5")]
    with pytest.raises(ValueError, match="at least 1"):
        messages_to_turns(msgs, max_history_messages=0)


def test_prompt_mode_matches_gpt4free_format() -> None:
    single = messages_to_prompt([HumanMessage("Hello")])
    assert _pairs(single) == [("user", "Hello")]
    flat = messages_to_prompt(
        [SystemMessage("S"), HumanMessage("Hi"), AIMessage("Yo"), HumanMessage("Q")]
    )
    assert _pairs(flat) == [("user", "System: S\nUser: Hi\nAssistant: Yo\nUser: Q\nAssistant:")]


def test_request_body_is_the_upstream_clients() -> None:
    turns = [Turn(role="user", parts=[Part(text="Hello")])]
    raw = RequestEncoder(turns, password=None, secret_key=KEY).encode(1700000000000)
    assert raw == (
        b'{"messages":[{"role":"user","parts":[{"text":"Hello"}]}],"time":1700000000000,'
        b'"pass":null,"sign":"909e9602040e341e0c5d3ec56df0e97028df882853691a741e8c62b922149d56"}'
    )
    request = GenerateRequest.model_validate(json.loads(raw))
    assert (request.time, request.password, turn_text(request.messages[0])) == (
        1700000000000,
        None,
        "Hello",
    )


def test_generation_config_follows_the_signature_only_when_set() -> None:
    turns = [Turn(role="user", parts=[Part(text="Hello")])]
    raw = RequestEncoder(
        turns, password="pw", secret_key=KEY, generation_config={"temperature": 0.5, "topK": 3}
    ).encode(1700000000000)
    assert raw.endswith(
        b'"sign":"909e9602040e341e0c5d3ec56df0e97028df882853691a741e8c62b922149d56",'
        b'"generationConfig":{"temperature":0.5,"topK":3}}'
    )
    assert RequestEncoder(turns, password=None, secret_key=KEY, generation_config={}).encode(
        1
    ) == RequestEncoder(turns, password=None, secret_key=KEY).encode(1)


def test_encode_keeps_non_ascii_as_utf8() -> None:
    turns = [Turn(role="user", parts=[Part(text="Привет 🌍")])]
    raw = RequestEncoder(turns, password="pw", secret_key="").encode(1)
    assert "Привет 🌍".encode() in raw
    assert b'"pass":"pw"' in raw


def test_signature_covers_concatenated_parts_of_last_turn() -> None:
    turn = Turn(role="user", parts=[Part(text="Hel"), Part(text="lo")])
    raw = RequestEncoder([turn], password=None, secret_key=KEY).encode(1700000000000)
    sign_ = json.loads(raw)["sign"]
    assert sign_ == "909e9602040e341e0c5d3ec56df0e97028df882853691a741e8c62b922149d56"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"error":{"message":"Invalid password."}}', ("Invalid password.", None)),
        (
            b'{"error":{"code":"GoogleGenerativeAIError","message":"quota"}}',
            ("quota", "GoogleGenerativeAIError"),
        ),
        (b"Bad Gateway", ("Bad Gateway", None)),
        (b"", ("", None)),
        (b'["x"]', ('["x"]', None)),
        (b'{"error":"plain"}', ("plain", None)),
        (b"\xff oops", ("\ufffd oops", None)),
    ],
)
def test_parse_error_body(body: bytes, expected: tuple[str, str | None]) -> None:
    assert parse_error_body(body) == expected


def test_request_encoder_signs_each_time_afresh_and_hides_the_password() -> None:
    turns = messages_to_turns([HumanMessage("Hi"), AIMessage("Yo"), HumanMessage("Привет 🌍")])
    for password in (None, 'pw "quoted"'):
        encoder = RequestEncoder(turns, password=password, secret_key=KEY)
        for time_ms in (1700000000000, 1732435200123):
            body = json.loads(encoder.encode(time_ms))
            assert body == {
                "messages": [
                    {"role": "user", "parts": [{"text": "Hi"}]},
                    {"role": "model", "parts": [{"text": "Yo"}]},
                    {"role": "user", "parts": [{"text": "Привет 🌍"}]},
                ],
                "time": time_ms,
                "pass": password,
                "sign": sign(time_ms, "Привет 🌍", KEY),
            }
    assert "pw" not in repr(RequestEncoder(turns, password="pw", secret_key=KEY))


def test_lone_surrogates_become_replacement_characters_as_in_javascript() -> None:
    assert well_formed("plain") == "plain"
    assert well_formed("a\ud800b") == "a\ufffdb"
    assert well_formed("\ud83c\udf0d") == "🌍"  # a pair stored as two code points
    assert well_formed("é\udfff") == "é\ufffd"
    # Signing and encoding never fail on such text, and agree with the cleaned text.
    assert sign(1, "a\ud800b", KEY) == sign(1, "a\ufffdb", KEY)
    turns = messages_to_turns([HumanMessage("a\ud800b")])
    encoder = RequestEncoder(turns, password="p\udc00", secret_key=KEY)
    body = json.loads(encoder.encode(5))
    assert body["messages"][0]["parts"][0]["text"] == "a\ufffdb"
    assert body["pass"] == "p\ufffd"
    assert body["sign"] == sign(5, "a\ufffdb", KEY)
