"""gprochat-server's settings from the environment, named backends, the command's flags.

Pure functions only (no socket): the environment mapping with its precedence, the
upstream's semantics of each variable, the Gemini backend's configuration, the
``--backend NAME=SPEC`` parsing and routing, the history check, and the ``model``
field ChatGPROChat sends.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_google_genai import ChatGoogleGenerativeAI

from langchain_gprochat import ChatGPROChat
from langchain_gprochat.protocol import DEFAULT_SECRET_KEY, Part, RequestEncoder, Turn
from langchain_gprochat.server import EchoBackend, ScriptedBackend, load_backend
from langchain_gprochat.server.__main__ import build_parser, main, settings_from_args
from langchain_gprochat.server.env import (
    ENV_VARIABLES,
    max_history_from_env,
    passwords_from_env,
    secret_key_from_env,
    site_passwords,
)
from langchain_gprochat.server.gemini import GeminiConfig, gemini_backend, gemini_model
from langchain_gprochat.server.gemini_direct import GeminiDirectBackend, gemini_direct_backend
from langchain_gprochat.server.routing import (
    BackendRoutes,
    load_backends,
    parse_backend_option,
)
from langchain_gprochat.server.validation import HISTORY_MESSAGE, Rejected, check_history

UPSTREAM_AND_OWN = (
    *(variable.name for variable in ENV_VARIABLES),
    "GOOGLE_API_KEY",
    "GOOGLE_GENAI_API_VERSION",
    "LANGSMITH_GATEWAY",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in UPSTREAM_AND_OWN:
        monkeypatch.delenv(name, raising=False)


def _settings(*argv: str) -> Any:
    return settings_from_args(build_parser().parse_args(list(argv)))


# ---------------------------------------------------------------- the environment mapping


def test_secret_key_precedence_flag_then_own_then_upstream_then_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _settings().secret_key == DEFAULT_SECRET_KEY
    monkeypatch.setenv("PUBLIC_SECRET_KEY", "upstream-key")
    assert _settings().secret_key == "upstream-key"
    monkeypatch.setenv("GPROCHAT_SECRET_KEY", "own-key")
    assert _settings().secret_key == "own-key"
    assert _settings("--secret-key", "flag-key").secret_key == "flag-key"
    assert _settings("--secret-key", "").secret_key == ""


def test_an_empty_upstream_secret_key_means_no_key_as_upstream() -> None:
    assert secret_key_from_env({"PUBLIC_SECRET_KEY": ""}) == ""
    assert secret_key_from_env({"GPROCHAT_SECRET_KEY": "", "PUBLIC_SECRET_KEY": "k"}) == ""
    assert secret_key_from_env({}) is None


def test_password_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _settings().passwords == ()
    monkeypatch.setenv("SITE_PASSWORD", "up1,up2")
    assert _settings().passwords == ("up1", "up2", "up1,up2")
    monkeypatch.setenv("GPROCHAT_SERVER_PASSWORDS", "own1,own2")
    assert _settings().passwords == ("own1", "own2")
    assert _settings("--password", "f1,f2", "--password", "f3").passwords == ("f1", "f2", "f3")
    monkeypatch.setenv("GPROCHAT_SERVER_PASSWORDS", "")  # set, even empty: it decides
    assert _settings().passwords == ()


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", ()),
        ("solo", ("solo",)),
        ("a,b", ("a", "b", "a,b")),  # upstream: sitePassword === pass || passList.includes
        ("a, b", ("a", " b", "a, b")),  # no trimming, as upstream
        ("a,,b", ("a", "b", "a,,b")),  # the empty entry is not an accepted password
        ("a,", ("a", "a,")),
        (",", (",",)),
    ],
)
def test_site_password_semantics(value: str, accepted: tuple[str, ...]) -> None:
    assert site_passwords(value) == accepted
    assert passwords_from_env({"SITE_PASSWORD": value}) == accepted


def test_max_history_precedence_and_upstream_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _settings().max_history_messages == 99
    monkeypatch.setenv("PUBLIC_MAX_HISTORY_MESSAGES", "")
    assert _settings().max_history_messages == 99  # parseInt(env || '99')
    monkeypatch.setenv("PUBLIC_MAX_HISTORY_MESSAGES", " 12 ")
    assert _settings().max_history_messages == 12
    assert _settings("--max-history-messages", "5").max_history_messages == 5


@pytest.mark.parametrize("raw", ["0", "-3", "12abc", "abc", "1.5", "٣"])
def test_a_bad_history_limit_is_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(ValueError, match="PUBLIC_MAX_HISTORY_MESSAGES") as info:
        max_history_from_env({"PUBLIC_MAX_HISTORY_MESSAGES": raw})
    assert str(info.value) == (
        f"PUBLIC_MAX_HISTORY_MESSAGES must be a whole number of at least 1, got {raw!r}"
    )


def test_a_bad_history_limit_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PUBLIC_MAX_HISTORY_MESSAGES", "zero")
    assert main(["--port", "0"]) == 2
    assert capsys.readouterr().err == (
        "gprochat-server: PUBLIC_MAX_HISTORY_MESSAGES must be a whole number of at least 1, "
        "got 'zero'\n"
    )
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--max-history-messages", "0"])
    assert info.value.code == 2
    assert "must be at least 1, got 0" in capsys.readouterr().err


# ---------------------------------------------------------------- the Gemini backend


def test_gemini_config_reads_the_upstream_variables() -> None:
    assert GeminiConfig.from_env({}) == GeminiConfig("gemini-2.5-flash", None, None)
    empty = {"GEMINI_API_KEY": "", "GEMINI_MODEL_NAME": "", "API_BASE_URL": "  "}
    assert GeminiConfig.from_env(empty) == GeminiConfig("gemini-2.5-flash", None, None)
    env = {
        "GEMINI_API_KEY": "key-123",
        "GEMINI_MODEL_NAME": "gemini-2.0-pro",
        "API_BASE_URL": " https://proxy.example/gemini/ ",  # trimmed, one '/' dropped
    }
    config = GeminiConfig.from_env(env)
    assert config == GeminiConfig("gemini-2.0-pro", "key-123", "https://proxy.example/gemini")
    assert "key-123" not in repr(config)
    assert GeminiConfig.from_env(env, model="gemini-x").model == "gemini-x"


def test_gemini_model_is_configured_as_upstream() -> None:
    model = gemini_model(GeminiConfig("gemini-2.0-pro", "key-123", "http://127.0.0.1:9"))
    assert isinstance(model, ChatGoogleGenerativeAI)
    assert (model.model, model.temperature, model.max_output_tokens) == (
        "gemini-2.0-pro",
        None,
        8000,
    )
    assert (model.base_url, model.api_version, model.max_retries) == (
        "http://127.0.0.1:9",
        "v1",
        1,
    )
    assert model.google_api_key is not None
    assert model.google_api_key.get_secret_value() == "key-123"
    assert sorted(category.name for category in model.safety_settings or {}) == [
        "HARM_CATEGORY_DANGEROUS_CONTENT",
        "HARM_CATEGORY_HARASSMENT",
        "HARM_CATEGORY_HATE_SPEECH",
        "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    ]
    assert {threshold.name for threshold in (model.safety_settings or {}).values()} == {
        "BLOCK_NONE"
    }
    assert "key-123" not in repr(model)


def test_gemini_langchain_from_spec_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "env-key")
    monkeypatch.setenv("GEMINI_MODEL_NAME", "from-env")
    routes = load_backends(["gemini-langchain"])
    default = routes.default
    assert repr(default) == "ChatModelBackend(ChatGoogleGenerativeAI)"
    assert default.model.model == "from-env"  # type: ignore[attr-defined]
    named = load_backends(["flash=gemini-langchain", "pro=gemini-langchain/gemini-2.5-pro"])
    assert [backend.model.model for backend in named.values()] == [  # type: ignore[attr-defined]
        "from-env",
        "gemini-2.5-pro",
    ]


def test_gemini_from_spec_is_the_direct_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "env-key-77")
    monkeypatch.setenv("GEMINI_MODEL_NAME", "from-env")
    monkeypatch.setenv("API_BASE_URL", " http://127.0.0.1:9/ ")
    named = load_backends(["flash=gemini", "pro=gemini/gemini-2.5-pro"])
    assert [repr(backend) for backend in named.values()] == [
        "GeminiDirectBackend(model='from-env', base_url='http://127.0.0.1:9')",
        "GeminiDirectBackend(model='gemini-2.5-pro', base_url='http://127.0.0.1:9')",
    ]
    assert isinstance(load_backend("gemini"), GeminiDirectBackend)
    monkeypatch.delenv("API_BASE_URL")
    assert repr(load_backend("gemini")) == (
        "GeminiDirectBackend(model='from-env', "
        "base_url='https://generativelanguage.googleapis.com')"
    )


def test_gemini_without_a_key_says_which_variable_to_set(
    capsys: pytest.CaptureFixture[str],
) -> None:
    message = "invalid backend 'gemini': no API key: set GEMINI_API_KEY (or GOOGLE_API_KEY)"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        gemini_direct_backend({})
    langchain = message.replace("'gemini'", "'gemini-langchain'")
    with pytest.raises(ValueError, match=f"^{re.escape(langchain)}$"):
        gemini_backend({})
    assert main(["--backend", "gemini"]) == 2
    assert capsys.readouterr().err == (
        "gprochat-server: invalid backend 'gemini': no API key: set GEMINI_API_KEY "
        "(or GOOGLE_API_KEY)\n"
    )
    assert main(["--backend", "gemini-langchain"]) == 2
    assert capsys.readouterr().err == f"gprochat-server: {langchain}\n"


def test_gemini_direct_falls_back_to_google_api_key() -> None:
    backend = gemini_direct_backend({"GOOGLE_API_KEY": "google-key-5"})
    assert backend.request_body([]) == (
        b'{"safetySettings":[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_NONE"},'
        b'{"category":"HARM_CATEGORY_HATE_SPEECH","threshold":"BLOCK_NONE"},'
        b'{"category":"HARM_CATEGORY_SEXUALLY_EXPLICIT","threshold":"BLOCK_NONE"},'
        b'{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","threshold":"BLOCK_NONE"}],'
        b'"generationConfig":{"maxOutputTokens":8000},"contents":[]}'
    )
    assert "google-key-5" not in repr(backend)


@pytest.mark.parametrize("base_url", ["ftp://proxy.example", "proxy.example/v1", "http://"])
def test_gemini_direct_refuses_a_bad_base_url(base_url: str) -> None:
    message = (
        "invalid backend 'gemini': API_BASE_URL must be an http:// or https:// URL with a "
        "host, e.g. https://generativelanguage.googleapis.com"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        gemini_direct_backend({"GEMINI_API_KEY": "k", "API_BASE_URL": base_url})


def test_gemini_direct_with_generation_and_body() -> None:
    backend = GeminiDirectBackend("m", "key-9", "http://127.0.0.1:9")
    assert backend.with_generation({}) == (backend, [])
    tuned, applied = backend.with_generation({"temperature": 0.5, "maxOutputTokens": 10})
    assert applied == ["temperature", "maxOutputTokens"]
    assert tuned.generation_config == {"maxOutputTokens": 10, "temperature": 0.5}
    assert backend.generation_config == {"maxOutputTokens": 8000}  # the original unchanged
    turns = [
        Turn(role="user", parts=[Part(text="a"), Part(text="b")]),
        Turn(role="model", parts=[Part(text="ü")]),
        Turn(role="user", parts=[Part(text="c")]),
    ]
    body = json.loads(tuned.request_body(turns))
    assert body["contents"] == [  # each turn's parts joined into one text, as upstream
        {"role": "user", "parts": [{"text": "ab"}]},
        {"role": "model", "parts": [{"text": "ü"}]},
        {"role": "user", "parts": [{"text": "c"}]},
    ]
    assert '"ü"' in tuned.request_body(turns).decode()  # raw UTF-8, as JSON.stringify
    with pytest.raises(ValueError, match=r"^invalid backend 'gemini': the API key is empty$"):
        GeminiDirectBackend("m", "")


def test_a_refused_gemini_setting_never_shows_the_key() -> None:
    with pytest.raises(ValueError, match=r"^invalid backend 'gemini-langchain': ") as info:
        gemini_model(GeminiConfig("gemini-x", "very-secret-key-0042", {"bad": 1}))  # type: ignore[arg-type]
    assert "very-secret-key-0042" not in str(info.value)
    assert str(info.value) == (
        "invalid backend 'gemini-langchain': When providing base_url as a dict, it must only "
        "contain the api_endpoint key."
    )


# ---------------------------------------------------------------- named backends


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("echo", (None, "echo")),
        ("my_models:chat", (None, "my_models:chat")),
        ("fast=echo", ("fast", "echo")),
        ("llama3.2:1b=my_models:chat", ("llama3.2:1b", "my_models:chat")),
        ("pro=gemini/gemini-2.5-pro", ("pro", "gemini/gemini-2.5-pro")),
    ],
)
def test_backend_option_parsing(value: str, parsed: tuple[str | None, str]) -> None:
    assert parse_backend_option(value) == parsed


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["fast="], "invalid --backend 'fast=': give NAME=SPEC, e.g. 'fast=echo'"),
        (
            ["=echo"],
            "invalid backend name '': use 1 to 128 letters, digits and . _ : / @ + -, "
            "starting with a letter or digit, e.g. 'fast=echo'",
        ),
        (
            ["bad name=echo"],
            "invalid backend name 'bad name': use 1 to 128 letters, digits and . _ : / @ + -, "
            "starting with a letter or digit, e.g. 'fast=echo'",
        ),
        (
            ["fast=echo", "echo"],
            "invalid --backend 'echo': with several backends, name each one as NAME=SPEC, "
            "e.g. 'fast=echo'",
        ),
        (["echo", "echo"], "invalid --backend 'echo': with several backends, name each one"),
        (["a=echo", "a=echo"], "invalid --backend 'a=echo': the name 'a' is given twice"),
        ([], "at least one --backend is needed"),
    ],
)
def test_bad_backend_options_are_refused(values: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        load_backends(values)


def test_a_bad_backend_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--backend", "a=echo", "--backend", "a=echo"]) == 2
    assert capsys.readouterr().err == (
        "gprochat-server: invalid --backend 'a=echo': the name 'a' is given twice\n"
    )


def test_routes_pick_by_model_the_first_by_default() -> None:
    fast, smart = EchoBackend(), ScriptedBackend([])
    routes = BackendRoutes({"fast": fast, "smart": smart})
    assert (list(routes), routes.default, routes.named) == (["fast", "smart"], fast, True)
    assert routes.pick({}) is fast
    assert routes.pick({"model": None}) is fast
    assert routes.pick({"model": "smart"}) is smart
    with pytest.raises(Rejected) as info:
        routes.pick({"model": "gemini-1.5-pro"})
    assert (info.value.status, info.value.message) == (
        400,
        "Unknown model 'gemini-1.5-pro': this server has 'fast', 'smart'.",
    )
    with pytest.raises(Rejected) as info:
        routes.pick({"model": 5})
    assert info.value.message == "Invalid request body: model must be a string or null."
    with pytest.raises(Rejected) as info:
        routes.pick({"model": "x" * 500})
    assert info.value.message == (f"Unknown model '{'x' * 100}…': this server has 'fast', 'smart'.")


def test_a_single_unnamed_backend_ignores_model_as_upstream() -> None:
    backend = EchoBackend()
    routes = BackendRoutes.of(backend)
    assert (list(routes), routes.named) == (["default"], False)
    assert routes.pick({"model": "anything"}) is backend
    assert routes.pick({"model": 5}) is backend
    assert routes.listing() == {
        "object": "list",
        "data": [{"id": "default", "object": "model", "owned_by": "gprochat-server"}],
    }
    with pytest.raises(ValueError, match=r"^at least one backend is needed$"):
        BackendRoutes({})
    with pytest.raises(ValueError, match=r"^only a single backend can be unnamed$"):
        BackendRoutes({"a": backend, "b": backend}, named=False)


# ---------------------------------------------------------------- history check, flags


@pytest.mark.parametrize(
    "messages",
    [
        None,
        [],
        [{"role": "assistant", "parts": [{"text": "Hi"}]}],
        [{"role": "model", "parts": [{"text": "Hi"}]}],
        [{"role": "user", "parts": [{"text": "a"}]}, {"role": "model", "parts": []}],
        [{"parts": [{"text": "no role"}]}],
        [{"role": "User", "parts": [{"text": "Hi"}]}],
        [5],
        [None],
        ["user"],
    ],
)
def test_history_check_refuses_a_last_turn_not_the_users(messages: object) -> None:
    body = {} if messages is None else {"messages": messages}
    with pytest.raises(Rejected) as info:
        check_history(body)
    assert (info.value.status, info.value.message) == (400, HISTORY_MESSAGE)


def test_history_check_leaves_the_rest_to_the_shape_check() -> None:
    check_history({"messages": [{"role": "user"}]})
    check_history({"messages": [5, {"role": "user"}]})
    check_history({"messages": "Hello"})


def test_log_level_any_case_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_parser().parse_args(["--log-level", "WARNING"]).log_level == "warning"
    assert build_parser().parse_args(["--log-level", "Debug"]).log_level == "debug"
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--log-level", "loud"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == "gprochat-server 0.1.0\n"


# ---------------------------------------------------------------- the client's model field


def _body(llm: ChatGPROChat, **kwargs: Any) -> dict[str, Any]:
    call = llm._prepare([HumanMessage("Hi")], None, kwargs)
    data: dict[str, Any] = json.loads(call.body())
    return data


def test_client_sends_model_only_when_set_per_call() -> None:
    llm = ChatGPROChat(base_url="http://127.0.0.1:9", model="gemini-1.5-pro")
    assert "model" not in _body(llm)
    assert _body(llm, model="smart")["model"] == "smart"
    assert list(_body(llm, model="smart", temperature=0.5)) == [
        "messages",
        "time",
        "pass",
        "sign",
        "generationConfig",
        "model",
    ]
    with pytest.raises(TypeError, match=r"^model must be a string, got int$"):
        _body(llm, model=5)


def test_encoder_puts_model_last() -> None:
    turns = [Turn(role="user", parts=[Part(text="Hello")])]
    raw = RequestEncoder(turns, password=None, secret_key=DEFAULT_SECRET_KEY, model="fast")
    assert raw.encode(1700000000000) == (
        b'{"messages":[{"role":"user","parts":[{"text":"Hello"}]}],"time":1700000000000,'
        b'"pass":null,"sign":"909e9602040e341e0c5d3ec56df0e97028df882853691a741e8c62b922149d56",'
        b'"model":"fast"}'
    )
