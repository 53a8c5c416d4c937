"""The gpt4free-style GPROChat: its surface, its request, its options; no sockets."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_gprochat._g4f_messages import format_prompt, native_turns
from langchain_gprochat._g4f_provider import ClientPool
from langchain_gprochat._g4f_provider import GPROChat as Standalone
from langchain_gprochat._g4f_request import Hidden, prepare, resolve
from langchain_gprochat._sessions import TransportSettings
from langchain_gprochat.g4f import GPROChat, provider_class
from langchain_gprochat.protocol import DEFAULT_SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]
KEY = "2BC120D4-BB36-1B60-26DE-DB630472A3D8"
T = 1700000000000
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Привет 🌍"},
    {"role": "assistant", "content": 'Hi! "Quoted"'},
    {"role": "user", "content": "Again\nplease"},
]
FLAT = (
    'System: Be brief.\nUser: Привет 🌍\nAssistant: Hi! "Quoted"\nUser: Again\nplease\nAssistant:'
)
ENV = ("BASE_URL", "SECRET_KEY", "PASSWORD", "PROXY", "API_KEY")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(f"GPROCHAT_{name}", raising=False)


def original_sign(timestamp: int, message: str) -> str:
    """The original provider's formula, as g4f 6.7.1 writes it."""
    return hashlib.sha256(f"{timestamp}:{message}:{KEY}".encode()).hexdigest()


def body_of(messages: Any, **call: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(prepare(messages, call, {}).encoder.encode(T))
    return data


# -- the surface ------------------------------------------------------------------


def test_the_class_is_built_once_on_the_standalone_one() -> None:
    assert GPROChat is provider_class()
    assert issubclass(GPROChat, Standalone)
    assert GPROChat.__name__ == "GPROChat"
    if importlib.util.find_spec("g4f") is None:  # the main test environment
        assert GPROChat.__mro__ == (Standalone, object)


def test_attributes_have_the_originals_values_for_gprochat_com() -> None:
    assert KEY == DEFAULT_SECRET_KEY
    assert GPROChat.url == "https://gprochat.com"
    assert GPROChat.api_endpoint == "https://gprochat.com/api/generate"
    assert GPROChat.working is False
    assert GPROChat.supports_stream is True
    assert GPROChat.supports_message_history is True
    assert GPROChat.default_model == "gemini-1.5-pro"
    assert GPROChat.models == ["gemini-1.5-pro"]


@pytest.mark.parametrize(
    ("base_url", "url", "working"),
    [
        ("http://127.0.0.1:3000/", "http://127.0.0.1:3000", True),
        ("https://chat.example.org/app", "https://chat.example.org/app", True),
        ("https://user:pw@chat.example.org", "https://***@chat.example.org", True),
        ("https://gprochat.com", "https://gprochat.com", False),
        ("https://WWW.gprochat.com/", "https://WWW.gprochat.com", False),
        ("ftp://chat.example.org", "ftp://chat.example.org", False),
        ("", "", False),
    ],
)
def test_url_and_working_follow_the_environment(
    monkeypatch: pytest.MonkeyPatch, base_url: str, url: str, working: bool
) -> None:
    monkeypatch.setenv("GPROCHAT_BASE_URL", base_url)
    assert (GPROChat.url, GPROChat.api_endpoint, GPROChat.working) == (
        url,
        url + "/api/generate",
        working,
    )


def test_configure_makes_a_class_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPROCHAT_BASE_URL", "https://env.example.org")
    Deployment = GPROChat.configure(base_url="https://chat.example.org", secret_key="k")
    assert issubclass(Deployment, GPROChat)
    assert Deployment.__name__ == "GPROChat"
    assert (Deployment.url, Deployment.working) == ("https://chat.example.org", True)
    assert GPROChat.url == "https://env.example.org"
    assert Deployment._pool is not GPROChat._pool
    Again = Deployment.configure(password="pw")
    options = resolve({}, Again._options)
    assert (options.settings.base_url, options.secret_key, options.password) == (
        "https://chat.example.org",
        "k",
        "pw",
    )


def test_working_can_be_assigned_per_class() -> None:
    Forced = GPROChat.configure()
    Forced.working = True
    assert (Forced.working, GPROChat.working) == (True, False)
    assert Forced.configure().working is False  # a new class decides afresh
    Forced.working = False
    assert Forced.working is False


def test_get_model() -> None:
    assert GPROChat.get_model("") == "gemini-1.5-pro"
    assert GPROChat.get_model("gemini-1.5-pro") == "gemini-1.5-pro"
    with pytest.raises(GPROChat._model_error, match=r"Model not found: 'gpt-4o'\. GPROChat serves"):
        GPROChat.get_model("gpt-4o")


def test_the_pool_keeps_one_client_per_settings_a_few_at_most() -> None:
    pool = ClientPool(size=2)
    a, b, c = (TransportSettings(base_url=f"http://127.0.0.1:{port}") for port in (1, 2, 3))
    first = pool.get(a)
    assert pool.get(a) is first
    second = pool.get(b)
    pool.get(a)  # a is now the most recently used
    pool.get(c)
    assert len(pool) == 2
    assert pool.get(a) is first
    assert pool.get(b) is not second  # b was dropped, and is made again
    first.pid = -1  # as if inherited through fork: abandoned, never reused
    assert pool.get(a) is not first
    pool.close()
    assert len(pool) == 0


# -- the signature ----------------------------------------------------------------

VECTORS = [
    (T, "Hello", None, "909e9602040e341e0c5d3ec56df0e97028df882853691a741e8c62b922149d56"),
    (
        1732435200123,
        "Привет, мир 🌍",
        None,
        "9221fc9c9c6596357d40e4f588a01538978b971a77d833981b4a70971c20d46d",
    ),
    (T, "", None, "893a906fb4df7e8b9de528127d943de0dcfe60a2b32364444754cca53927561f"),
    (
        T,
        "line1\nline2",
        "my-own-secret",
        "aae2452eb14d3cfc380ca63e8b0926a20247e07c18a4627a5f95500afbcfd5ec",
    ),
    (T, "Hello", "", "25252ce63a1e8e910eb1e6a83844ff41c9267376bb407c06e89e0f527dac4c35"),
]


@pytest.mark.parametrize(("time_ms", "text", "key", "expected"), VECTORS)
def test_signature_vectors_of_the_protocol(
    time_ms: int, text: str, key: str | None, expected: str
) -> None:
    assert GPROChat.generate_signature(time_ms, text, secret_key=key) == expected
    if key is not None:
        assert GPROChat.configure(secret_key=key).generate_signature(time_ms, text) == expected


@settings(max_examples=300)
@given(timestamp=st.integers(), message=st.text())
def test_signature_is_the_originals_formula(timestamp: int, message: str) -> None:
    assert GPROChat.generate_signature(timestamp, message) == original_sign(timestamp, message)


def test_signature_uses_the_configured_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPROCHAT_SECRET_KEY", "my-own-secret")
    assert GPROChat.generate_signature(T, "line1\nline2") == VECTORS[3][3]
    assert GPROChat.configure(secret_key="").generate_signature(T, "Hello") == VECTORS[4][3]


def test_lone_surrogates_are_signed_as_replacement_characters() -> None:
    assert GPROChat.generate_signature(T, "a\ud800b") == original_sign(T, "a\ufffdb")


# -- the request ------------------------------------------------------------------


def test_default_body_is_the_originals_byte_for_byte() -> None:
    raw = prepare(CONVERSATION, {}, {}).encoder.encode(T)
    sign = original_sign(T, FLAT)
    expected = (
        '{"messages":[{"role":"user","parts":[{"text":"System: Be brief.\\nUser: Привет 🌍'
        '\\nAssistant: Hi! \\"Quoted\\"\\nUser: Again\\nplease\\nAssistant:"}]}],'
        f'"time":1700000000000,"pass":null,"sign":"{sign}"}}'
    )
    assert raw == expected.encode()
    original = {
        "messages": [{"role": "user", "parts": [{"text": FLAT}]}],
        "time": T,
        "pass": None,
        "sign": sign,
    }
    assert json.loads(raw) == original
    assert list(json.loads(raw)) == list(original)


@settings(max_examples=100)
@given(
    contents=st.lists(st.text(), min_size=1, max_size=5),
    roles=st.lists(st.sampled_from(["system", "user", "assistant"]), min_size=5, max_size=5),
)
def test_default_body_for_any_conversation(contents: list[str], roles: list[str]) -> None:
    messages = [{"role": r, "content": c} for r, c in zip(roles, contents, strict=False)]
    prompt = format_prompt(messages)
    assert body_of(messages) == {
        "messages": [{"role": "user", "parts": [{"text": prompt}]}],
        "time": T,
        "pass": None,
        "sign": original_sign(T, prompt),
    }


@pytest.mark.parametrize(
    ("messages", "prompt"),
    [
        (CONVERSATION, FLAT),
        ([{"role": "user", "content": "  just this  "}], "  just this  "),
        ([{"role": "assistant", "content": "alone"}], "alone"),
        (
            [{"role": "user", "content": "a"}, {"role": "assistant", "content": " \n "}],
            "User: a\nAssistant:",
        ),
        (
            [{"role": "developer", "content": "dev"}, {"role": "USER", "content": "u"}],
            "Developer: dev\nUser: u\nAssistant:",
        ),
        (
            [
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"text": "b"}]},
                {"role": "tool", "content": None},
                {"role": "user", "content": {"text": "c"}},
            ],
            "User: ab\nUser: c\nAssistant:",
        ),
        ([{"role": "user", "content": ""}, {"role": "user", "content": ""}], "\nAssistant:"),
    ],
)
def test_format_prompt(messages: list[dict[str, Any]], prompt: str) -> None:
    assert format_prompt(messages) == prompt


def test_native_history_sends_real_turns() -> None:
    body = body_of(CONVERSATION, history_mode="native")
    first = "[System instructions]\nBe brief.\n[End of system instructions]\n\nПривет 🌍"
    assert body["messages"] == [
        {"role": "user", "parts": [{"text": first}]},
        {"role": "model", "parts": [{"text": 'Hi! "Quoted"'}]},
        {"role": "user", "parts": [{"text": "Again\nplease"}]},
    ]
    assert body["sign"] == original_sign(T, "Again\nplease")
    tool = native_turns(
        [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "calling"},
            {"role": "tool", "content": "42", "tool_call_id": "c1", "name": "calc"},
        ]
    )
    assert [t.role for t in tool] == ["user", "model", "user"]
    assert "42" in tool[-1].parts[0].text


def test_generation_settings_and_password_go_into_the_body() -> None:
    body = body_of(
        [{"role": "user", "content": "hi"}],
        password="pw",
        temperature=0.5,
        max_tokens=10,
        top_p=1,
        top_k=3,
        stream=True,
        response_format={"type": "json_object"},
    )
    assert body["pass"] == "pw"
    assert body["generationConfig"] == {
        "temperature": 0.5,
        "maxOutputTokens": 10,
        "topP": 1,
        "topK": 3,
    }


# -- options ----------------------------------------------------------------------


def test_options_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPROCHAT_BASE_URL", "https://env.example.org")
    monkeypatch.setenv("GPROCHAT_PASSWORD", "env-pw")
    monkeypatch.setenv("GPROCHAT_PROXY", "http://proxy.example.org:3128")
    monkeypatch.setenv("GPROCHAT_SECRET_KEY", "env-key")
    env = resolve({}, {})
    assert (env.settings.base_url, env.password, env.secret_key, env.settings.proxy) == (
        "https://env.example.org",
        "env-pw",
        "env-key",
        "http://proxy.example.org:3128",
    )
    configured = GPROChat.configure(base_url="https://conf.example.org/", password=None)._options
    conf = resolve({}, configured)
    assert (conf.settings.base_url, conf.password) == ("https://conf.example.org", None)
    call = resolve({"base_url": "http://127.0.0.1:1", "password": "call-pw"}, configured)
    assert (call.settings.base_url, call.password) == ("http://127.0.0.1:1", "call-pw")
    assert resolve({"base_url": None, "proxy": None}, {}).settings.base_url == (
        "https://env.example.org"
    )


def test_transport_settings_and_headers() -> None:
    options = resolve(
        {
            "base_url": "https://u:p@chat.example.org/app/",
            "timeout": 5,
            "connect_timeout": 1.5,
            "first_byte_timeout": None,
            "max_retries": 0,
            "api_key": {"GPROChat": "gw-key", "Other": "x"},
            "headers": {"X-Extra": "1"},
            "stop": "END",
        },
        {},
    )
    s = options.settings
    assert (s.total_timeout, s.connect_timeout, s.first_byte_timeout, s.chunk_timeout) == (
        5.0,
        1.5,
        None,
        60.0,
    )
    assert s.max_retries == 0
    assert options.stop == ("END",)
    assert dict(s.headers) == {
        "accept": "*/*",
        "origin": "https://chat.example.org",
        "referer": "https://chat.example.org/app/",
        "content-type": "text/plain;charset=UTF-8",
        "Authorization": "Bearer gw-key",
        "X-Extra": "1",
    }
    default = resolve({}, {}).settings
    assert (default.total_timeout, default.max_retries) == (600.0, 2)
    assert dict(default.headers)["referer"] == "https://gprochat.com/"


@pytest.mark.parametrize(
    ("messages", "call", "error", "match"),
    [
        ([], {}, ValueError, "messages is empty"),
        ("hi", {}, ValueError, "messages must be a list"),
        ([{"content": "x"}], {}, ValueError, 'message 0 must be a dict with a string "role"'),
        ([{"role": "user"}], {}, ValueError, r'message 0 \(user\) has no "content"'),
        ([{"role": "user", "content": 3}], {}, ValueError, "content must be a string"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            {},
            ValueError,
            "takes text only; remove the 'image_url' part of message 0",
        ),
        ([{"role": "user", "content": "x"}], {"media": [["x", "y"]]}, ValueError, "`media`"),
        ([{"role": "user", "content": "x"}], {"history_mode": "both"}, ValueError, "history_m"),
        ([{"role": "user", "content": "x"}], {"timeout": 0}, ValueError, "timeout must be"),
        ([{"role": "user", "content": "x"}], {"max_retries": -1}, ValueError, "max_retries"),
        ([{"role": "user", "content": "x"}], {"temperature": -1}, ValueError, "temperature"),
        ([{"role": "user", "content": "x"}], {"max_tokens": 1.5}, ValueError, "an integer"),
        ([{"role": "user", "content": "x"}], {"stop": [1]}, ValueError, "stop must be"),
        ([{"role": "user", "content": "x"}], {"proxy": "ftp://p"}, ValueError, "proxy must"),
        ([{"role": "user", "content": "x"}], {"base_url": "chat.org"}, ValueError, "base_url"),
        ([{"role": "user", "content": "x"}], {"secret_key": 5}, ValueError, "secret_key must"),
        (
            [{"role": "assistant", "content": "x"}],
            {"history_mode": "native"},
            ValueError,
            "the last message must be the user's",
        ),
        (
            [{"role": "function", "content": "x"}],
            {"history_mode": "native"},
            ValueError,
            "role 'function' has no turn in native history mode",
        ),
    ],
)
def test_bad_input_raises_before_any_request(
    messages: Any, call: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        GPROChat.create_completion("", messages, **call)
    with pytest.raises(error, match=match):
        prepare(messages, call, {})


async def test_the_async_generator_raises_at_its_first_step() -> None:
    stream = GPROChat.create_async_generator("gpt-4o", [{"role": "user", "content": "x"}])
    with pytest.raises(GPROChat._model_error, match="Model not found"):
        await anext(stream)


def test_configure_checks_names_and_values_at_once() -> None:
    with pytest.raises(TypeError, match=r"unknown options \['secretkey'\]"):
        GPROChat.configure(secretkey="k")
    with pytest.raises(ValueError, match="base_url must start with http"):
        GPROChat.configure(base_url="chat.example.org")


def test_secrets_never_show() -> None:
    secrets = ("s3cret-key", "pa55word", "gw-t0ken", "us3r:pr0xypass", "urlpa55")
    Configured = GPROChat.configure(
        base_url="https://admin:urlpa55@chat.example.org",
        secret_key="s3cret-key",
        password="pa55word",
        api_key="gw-t0ken",
        proxy="http://us3r:pr0xypass@proxy.example.org:3128",
        headers={"X-Token": "gw-t0ken"},
    )
    options = resolve({}, Configured._options)
    prepared = prepare([{"role": "user", "content": "x"}], {}, Configured._options)
    shown = [
        repr(Configured),
        str(Configured),
        repr(Configured._options),
        Configured.url,
        Configured.api_endpoint,
        repr(options),
        repr(prepared),
        repr(Hidden("pa55word")),
    ]
    for text in shown:
        for secret in secrets:
            assert secret not in text, (secret, text)
    with pytest.raises(ValueError, match=r"got 'ftp://\*\*\*@chat\.example\.org'") as info:
        GPROChat.configure(base_url="ftp://admin:urlpa55@chat.example.org")
    assert "urlpa55" not in str(info.value)


# -- with and without g4f (in subprocesses: provider_class is built once) ---------


def _run(code: str, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env_path = [str(path)] if path else []
    prelude = f"import sys; sys.path[:0] = {env_path!r}\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_imports_without_g4f() -> None:
    result = _run(
        """
        import sys

        sys.modules["g4f"] = None  # as if not installed, whatever this environment has
        from langchain_gprochat.g4f import GPROChat
        print([c.__name__ for c in GPROChat.__mro__], sys.modules["g4f"])
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "['GPROChat', 'object'] None\n"


def _fake_g4f(root: Path, base_provider: str) -> None:
    package = root / "g4f"
    (package / "providers").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "providers" / "__init__.py").write_text("")
    (package / "errors.py").write_text("class ModelNotFoundError(Exception):\n    pass\n")
    (package / "providers" / "base_provider.py").write_text(textwrap.dedent(base_provider))


def test_a_g4f_install_gets_a_subclass_of_its_bases(tmp_path: Path) -> None:
    _fake_g4f(
        tmp_path,
        """
        from abc import ABC, abstractmethod

        class AsyncGeneratorProvider(ABC):
            working = False
            url = None

            @staticmethod
            @abstractmethod
            async def create_async_generator(model, messages, **kwargs):
                raise NotImplementedError

        class ProviderModelMixin:
            default_model = None
            models = []
        """,
    )
    result = _run(
        """
        from g4f.errors import ModelNotFoundError
        from g4f.providers.base_provider import AsyncGeneratorProvider, ProviderModelMixin
        from langchain_gprochat.g4f import GPROChat, provider_class
        from langchain_gprochat._g4f_provider import GPROChat as Standalone

        assert GPROChat is provider_class() and issubclass(GPROChat, Standalone)
        assert issubclass(GPROChat, AsyncGeneratorProvider)
        assert issubclass(GPROChat, ProviderModelMixin)
        assert not GPROChat.__abstractmethods__
        print(GPROChat.__module__, GPROChat.__name__, GPROChat.working, GPROChat.url)
        print(GPROChat.default_model, GPROChat.models, type(GPROChat).__name__)
        print(GPROChat.configure(base_url="http://127.0.0.1:1").working)
        try:
            GPROChat.get_model("gpt-4o")
        except ModelNotFoundError as exc:
            print("ModelNotFoundError", str(exc).split(".")[0])
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "langchain_gprochat.g4f GPROChat False https://gprochat.com",
        "gemini-1.5-pro ['gemini-1.5-pro'] G4FEndpoint",
        "True",
        "ModelNotFoundError Model not found: 'gpt-4o'",
    ]


def test_a_broken_g4f_install_gives_the_standalone_class_and_says_why(tmp_path: Path) -> None:
    _fake_g4f(tmp_path, "raise ImportError('no module named g4f.typing')\n")
    result = _run(
        """
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from langchain_gprochat.g4f import GPROChat
        print([c.__name__ for c in GPROChat.__mro__])
        print([str(w.message) for w in caught if w.category is RuntimeWarning])
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "['GPROChat', 'object']"
    assert "g4f is installed, but its provider base classes could not be loaded" in lines[1]
    assert "no module named g4f.typing" in lines[1]
