from __future__ import annotations

import json

import pytest
from langchain_core.load import dumpd, dumps, load
from pydantic import ValidationError

from langchain_gprochat import ChatGPROChat
from langchain_gprochat._status import status_error
from langchain_gprochat.errors import (
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    PayloadTooLargeError,
    RateLimitError,
    RedirectError,
    ServerError,
    StreamInterruptedError,
)
from langchain_gprochat.protocol import DEFAULT_BASE_URL, DEFAULT_SECRET_KEY

SECRET = "s3cr3t-key-value"
PASSWORD = "pa55-w0rd-value"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GPROCHAT_BASE_URL", "GPROCHAT_SECRET_KEY", "GPROCHAT_PASSWORD", "GPROCHAT_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    llm = ChatGPROChat()
    assert llm.model == "gemini-1.5-pro"
    assert llm.base_url == DEFAULT_BASE_URL
    assert llm.secret_key.get_secret_value() == DEFAULT_SECRET_KEY
    assert llm.password is None
    assert llm.history_mode == "native"
    assert (llm.timeout, llm.connect_timeout, llm.first_byte_timeout, llm.chunk_timeout) == (
        600.0,
        10.0,
        120.0,
        60.0,
    )
    assert llm.max_retries == 2
    assert llm._llm_type == "gprochat"


def test_env_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPROCHAT_BASE_URL", "http://127.0.0.1:8080/")
    monkeypatch.setenv("GPROCHAT_SECRET_KEY", SECRET)
    monkeypatch.setenv("GPROCHAT_PASSWORD", PASSWORD)
    monkeypatch.setenv("GPROCHAT_PROXY", "http://127.0.0.1:3128")
    llm = ChatGPROChat()
    assert llm.base_url == "http://127.0.0.1:8080"
    assert llm.secret_key.get_secret_value() == SECRET
    assert llm.password is not None
    assert llm.password.get_secret_value() == PASSWORD
    assert llm.proxy == "http://127.0.0.1:3128"


def test_aliases() -> None:
    llm = ChatGPROChat(model_name="m", stop_sequences=["END"], request_timeout=5)
    assert (llm.model, llm.stop, llm.timeout) == ("m", ["END"], 5.0)


def test_secrets_never_in_repr_or_serialization() -> None:
    llm = ChatGPROChat(secret_key=SECRET, password=PASSWORD, proxy="http://u:pw@127.0.0.1:1")
    for text in (repr(llm), str(llm), dumps(llm), json.dumps(dumpd(llm))):
        assert SECRET not in text
        assert PASSWORD not in text
    assert "u:pw" not in repr(llm)


@pytest.mark.filterwarnings("ignore:The function `load` is in beta")
def test_serialization_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    llm = ChatGPROChat(
        base_url="http://127.0.0.1:8080",
        secret_key=SECRET,
        password=PASSWORD,
        history_mode="prompt",
        max_retries=5,
    )
    data = dumpd(llm)
    assert data["kwargs"]["secret_key"] == {
        "lc": 1,
        "type": "secret",
        "id": ["GPROCHAT_SECRET_KEY"],
    }
    assert data["kwargs"]["password"] == {"lc": 1, "type": "secret", "id": ["GPROCHAT_PASSWORD"]}
    monkeypatch.setenv("GPROCHAT_SECRET_KEY", SECRET)
    monkeypatch.setenv("GPROCHAT_PASSWORD", PASSWORD)
    loaded = load(
        data,
        allowed_objects=[ChatGPROChat],
        secrets_from_env=True,
        valid_namespaces=["langchain_gprochat"],
    )
    assert isinstance(loaded, ChatGPROChat)
    assert loaded.history_mode == "prompt"
    assert loaded.max_retries == 5
    assert loaded.secret_key.get_secret_value() == SECRET


UNSUPPORTED = [
    ("n", "returns one answer per request"),
    ("seed", "has no seed setting"),
    ("frequency_penalty", "has no penalty settings"),
    ("logprobs", "without token probabilities"),
]


@pytest.mark.parametrize(("name", "fragment"), UNSUPPORTED)
def test_unsupported_settings_are_rejected(name: str, fragment: str) -> None:
    with pytest.raises(ValidationError, match=f"does not take `{name}`") as info:
        ChatGPROChat(**{name: 1})
    assert fragment in str(info.value)


@pytest.mark.parametrize(("name", "fragment"), UNSUPPORTED)
def test_unsupported_call_arguments_get_the_construction_message(name: str, fragment: str) -> None:
    llm = ChatGPROChat(base_url="http://127.0.0.1:9")
    with pytest.raises(ValidationError) as at_init:
        ChatGPROChat(**{name: 1})
    with pytest.raises(TypeError) as per_call:
        llm.invoke("hi", **{name: 1})
    assert str(per_call.value) == at_init.value.errors()[0]["ctx"]["error"].args[0]
    assert fragment in str(per_call.value)


def test_standard_parameters_are_taken_at_init_and_reported() -> None:
    llm = ChatGPROChat(
        temperature=0,
        max_tokens=100,
        top_p=0.5,
        top_k=3,
        timeout=60,
        stop=[],
        max_retries=2,
        api_key="k",
    )
    assert llm._get_ls_params() == {
        "ls_provider": "gprochat",
        "ls_model_name": "gemini-1.5-pro",
        "ls_model_type": "chat",
        "ls_temperature": 0,
        "ls_max_tokens": 100,
    }
    assert llm._get_ls_params(temperature=0.7, max_tokens=5)["ls_temperature"] == 0.7
    assert llm._identifying_params == {
        "model": "gemini-1.5-pro",
        "base_url": "https://gprochat.com",
        "history_mode": "native",
        "temperature": 0,
        "max_tokens": 100,
        "top_p": 0.5,
        "top_k": 3,
    }
    assert ChatGPROChat(max_output_tokens=7).max_tokens == 7
    assert "'k'" not in repr(llm)


def test_unknown_setting_is_rejected() -> None:
    with pytest.raises(ValidationError, match="histroy_mode"):
        ChatGPROChat(histroy_mode="prompt")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"base_url": "gprochat.com"}, "base_url must start with http:// or https://"),
        ({"proxy": "ftp://127.0.0.1"}, "proxy must be an http://, https://, socks4://"),
        ({"history_mode": "flat"}, "history_mode"),
        ({"max_retries": -1}, "max_retries"),
        ({"timeout": 0}, "timeout"),
        ({"max_history_messages": 0}, "max_history_messages"),
    ],
)
def test_bad_settings(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        ChatGPROChat(**kwargs)


def test_ls_params() -> None:
    llm = ChatGPROChat(stop=["x"])
    assert llm._get_ls_params() == {
        "ls_provider": "gprochat",
        "ls_model_name": "gemini-1.5-pro",
        "ls_model_type": "chat",
        "ls_stop": ["x"],
    }
    assert llm._get_ls_params(stop=["y"], model="other")["ls_model_name"] == "other"
    assert llm._get_ls_params(stop=["y"])["ls_stop"] == ["y"]


def test_identifying_params() -> None:
    llm = ChatGPROChat(base_url="http://127.0.0.1:1", secret_key=SECRET)
    assert llm._identifying_params == {
        "model": "gemini-1.5-pro",
        "base_url": "http://127.0.0.1:1",
        "history_mode": "native",
    }


def test_invalid_conversation_raises_before_any_request() -> None:
    # Sockets are disabled in unit tests: reaching the network would fail differently.
    llm = ChatGPROChat(base_url="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="last message must be the user's"):
        llm.invoke([("human", "q"), ("ai", "a")])
    with pytest.raises(ValueError, match="takes text only"):
        llm.invoke(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
                    ],
                }
            ]
        )


def test_unexpected_call_kwargs_are_rejected() -> None:
    llm = ChatGPROChat(base_url="http://127.0.0.1:9")
    with pytest.raises(TypeError) as info:
        llm.invoke("hi", temprature=0.5)
    assert str(info.value) == (
        "ChatGPROChat got unexpected call arguments: ['temprature']; a call takes model, "
        "stop, temperature, max_tokens, top_p, top_k, tools, tool_choice, response_format"
    )


def test_status_error_classes_and_messages() -> None:
    url = "http://127.0.0.1:1/api/generate"
    pw = status_error(401, "Invalid password.", url=url)
    assert isinstance(pw, AuthenticationError)
    assert pw.reason == "password"
    assert str(pw) == (
        "401 from http://127.0.0.1:1/api/generate: Invalid password. (the site password "
        "was refused: set `password` (or GPROCHAT_PASSWORD) to one the deployment accepts)"
    )
    sig = status_error(401, "Invalid signature.", url=url)
    assert isinstance(sig, AuthenticationError)
    assert sig.reason == "signature"
    assert str(sig) == (
        "401 from http://127.0.0.1:1/api/generate: Invalid signature. (the request "
        "signature was refused: set `secret_key` (or GPROCHAT_SECRET_KEY) to the "
        "deployment's PUBLIC_SECRET_KEY)"
    )
    assert isinstance(status_error(400, "x", url=url), BadRequestError)
    too_large = status_error(413, "too big", url=url)
    assert isinstance(too_large, PayloadTooLargeError)
    assert str(too_large) == (
        "413 from http://127.0.0.1:1/api/generate: too big (shorten the conversation or "
        "set `max_history_messages`)"
    )
    down = status_error(503, "down", url=url)
    assert str(down) == (
        "503 from http://127.0.0.1:1/api/generate: down (the server failed; retried up to "
        "`max_retries` times)"
    )
    moved = RedirectError(302, "it leads to another host", url=url, location="https://x.test/")
    assert str(moved) == (
        "302 from http://127.0.0.1:1/api/generate: redirect to https://x.test/ (it leads "
        "to another host; the request was not re-sent. If that is the deployment, set "
        "`base_url` to it)"
    )
    limited = status_error(429, "slow down", url=url, retry_after=3.0)
    assert isinstance(limited, RateLimitError)
    assert limited.retry_after == 3.0
    failed = status_error(503, "", url=url, server_code="Overloaded")
    assert isinstance(failed, ServerError)
    assert (failed.status_code, failed.server_code) == (503, "Overloaded")
    assert str(failed).startswith("503 from http://127.0.0.1:1/api/generate: (empty body)")


def test_timeout_and_interruption_messages() -> None:
    err = APITimeoutError("first_byte", 2.5, url="http://h/api/generate")
    assert isinstance(err, TimeoutError)
    assert str(err) == (
        "first byte timeout of 2.5s exceeded for http://h/api/generate: the server accepted "
        "the request but sent no answer in time; raise `first_byte_timeout`."
    )
    cut = StreamInterruptedError(
        "the connection broke", partial_text="Hello", url="http://h/api/generate"
    )
    assert cut.partial_text == "Hello"
    assert "after 5 characters had arrived: the connection broke" in str(cut)
