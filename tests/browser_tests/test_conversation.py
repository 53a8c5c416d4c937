"""The chat page in a real headless Chromium: conversations, Markdown, history, signing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from langchain_gprochat.protocol import SYSTEM_TEMPLATE
from langchain_gprochat.server import GPROChatServer, ScriptedBackend, echo_reply

from ._page import RECORD_STREAM, ChatPage, GatedBackend, model, user

ARTIFACTS = Path(__file__).parent / "_artifacts"


@pytest.fixture(autouse=True)
def _clean_console(driver: WebDriver) -> None:
    driver.get_log("browser")  # drop what earlier tests left


def test_answer_grows_while_it_streams_and_ends_as_the_echo(driver: WebDriver) -> None:
    question = "Hello there, page — naïve café 🌍"
    expected = echo_reply([user(question)])
    with GPROChatServer(chunk_delay=0.2) as srv:
        page = ChatPage(driver, srv.url).open()
        page.js(RECORD_STREAM)
        page.ask_and_wait(question, answers=1)
        seen: list[str] = page.js("return window.__seen")
        assert page.messages() == [("user", question), ("assistant", expected)]
        assert page.stored() == [
            {"role": "user", "content": question},
            {"role": "assistant", "content": expected},
        ]
    partial = [text for text in seen if 0 < len(text) < len(expected)]
    assert partial, f"no intermediate state among {seen!r}"
    assert all(expected.startswith(text) for text in partial)
    assert page.console_errors() == []


MARKDOWN_ANSWER = """Here is **what you asked** for:

| language | typing |
|---|---|
| Python | dynamic |
| Rust | static |

1. first step
2. second step

- apples
- pears

```python
def greet(name: str) -> str:
    return f"Hello, {name}!"
```

See [the docs](https://example.com/docs)."""

SECOND_ANSWER = "The table above has **2 rows**; the code defines `greet`."


def test_markdown_renders_tables_lists_and_code(driver: WebDriver) -> None:
    backend = ScriptedBackend([MARKDOWN_ANSWER, SECOND_ANSWER])
    with GPROChatServer(backend=backend) as srv:
        page = ChatPage(driver, srv.url).open()
        page.ask_and_wait("Show me a table, lists and some code", answers=1)
        answer = page.content()
        cells = [
            [cell.text for cell in row.find_elements(By.CSS_SELECTOR, "th, td")]
            for row in answer.find_elements(By.CSS_SELECTOR, "table tr")
        ]
        assert cells == [["language", "typing"], ["Python", "dynamic"], ["Rust", "static"]]
        ordered = answer.find_elements(By.CSS_SELECTOR, "ol > li")
        assert [item.text for item in ordered] == ["first step", "second step"]
        bullets = answer.find_elements(By.CSS_SELECTOR, "ul > li")
        assert [item.text for item in bullets] == ["apples", "pears"]
        code = answer.find_element(By.CSS_SELECTOR, "pre > code.language-python")
        assert code.get_attribute("textContent") == (
            'def greet(name: str) -> str:\n    return f"Hello, {name}!"\n'
        )
        assert answer.find_element(By.CSS_SELECTOR, "strong").text == "what you asked"
        link = answer.find_element(By.CSS_SELECTOR, "a")
        assert (link.get_attribute("href"), link.get_attribute("target")) == (
            "https://example.com/docs",
            "_blank",
        )
        assert link.get_attribute("rel") == "noopener noreferrer"
        page.ask_and_wait("How many rows?", answers=2)
        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "conversation.png"))
    assert page.console_errors() == []


def test_regenerate_replaces_the_last_answer(driver: WebDriver) -> None:
    backend = ScriptedBackend(["first answer", "second answer"])
    with GPROChatServer(backend=backend) as srv:
        page = ChatPage(driver, srv.url).open()
        page.ask_and_wait("Q", answers=1)
        assert page.messages() == [("user", "Q"), ("assistant", "first answer")]
        page.click("#messages .regenerate")
        page.wait(lambda: page.idle() and page.messages()[-1][1] == "second answer", "regen")
        assert page.messages() == [("user", "Q"), ("assistant", "second answer")]
        assert page.stored() == [
            {"role": "user", "content": "Q"},
            {"role": "assistant", "content": "second answer"},
        ]
    assert backend.received == [[user("Q")], [user("Q")]]
    assert page.console_errors() == []


def test_stop_keeps_the_partial_answer_and_ends_the_stream(driver: WebDriver) -> None:
    backend = GatedBackend("Partial answer", " never sent", later=["Whole answer"])
    with GPROChatServer(backend=backend) as srv:
        page = ChatPage(driver, srv.url).open()
        page.ask("Tell me everything")
        page.wait_streaming("Partial answer", "the first part")
        assert page.shown("thinking")
        assert not page.shown("composer")
        page.click("#stop")
        page.wait(page.idle, "the page to stop")
        backend.release.set()  # the server learns that the client left at its next write
        page.wait(lambda: srv.stats.client_disconnects == 1, "the server to see the stop")
        assert page.messages() == [
            ("user", "Tell me everything"),
            ("assistant", "Partial answer"),
        ]
        assert page.stored()[-1] == {"role": "assistant", "content": "Partial answer"}
        assert page.error() is None
        page.click("#messages .regenerate")
        page.wait(lambda: page.idle() and page.messages()[-1][1] == "Whole answer", "regen")
        assert page.messages() == [("user", "Tell me everything"), ("assistant", "Whole answer")]
    assert backend.received == [[user("Tell me everything")]] * 2
    assert page.console_errors() == []


def test_history_survives_a_reload_and_is_cut_to_the_limit(driver: WebDriver) -> None:
    backend = ScriptedBackend(["a1", "a2", "a3"])
    with GPROChatServer(backend=backend, max_history_messages=3) as srv:
        page = ChatPage(driver, srv.url).open()
        page.ask_and_wait("q1", answers=1)
        page.ask_and_wait("q2", answers=2)
        page.reload()
        restored = [("user", "q1"), ("assistant", "a1"), ("user", "q2"), ("assistant", "a2")]
        assert page.messages() == restored
        page.ask_and_wait("q3", answers=3)
        assert page.messages() == [*restored, ("user", "q3"), ("assistant", "a3")]
        page.click("#clear")
        assert page.messages() == []
        assert page.stored() == []
    assert backend.received == [
        [user("q1")],
        [user("q1"), model("a1"), user("q2")],
        [user("q2"), model("a2"), user("q3")],
    ]
    assert page.console_errors() == []


def test_system_role_is_folded_into_the_first_user_turn(driver: WebDriver) -> None:
    backend = ScriptedBackend(["Sure.", "Done."])
    with GPROChatServer(backend=backend) as srv:
        page = ChatPage(driver, srv.url).open()
        page.click("#system-add")
        page.by_id("system-input").send_keys("Answer in one word.")
        page.click("#system-set")
        assert page.by_id("system-text").text == "Answer in one word."
        assert page.stored("systemRoleSettings") == "Answer in one word."
        page.ask_and_wait("Hi", answers=1)
        assert not page.shown("system-remove")  # fixed once the conversation started
        page.ask_and_wait("Again", answers=2)
    folded = SYSTEM_TEMPLATE.format(system="Answer in one word.", content="Hi")
    assert backend.received == [
        [user(folded)],
        [user(folded), model("Sure."), user("Again")],
    ]
    assert page.console_errors() == []


HOSTILE_KEY = "k\\e`y${x}$ {y}\r\n\t\"' </script> ü🌍 \ud800 end"


def test_a_key_with_special_characters_still_signs(driver: WebDriver) -> None:
    with GPROChatServer(secret_key=HOSTILE_KEY) as srv:
        page = ChatPage(driver, srv.url).open()
        page.ask_and_wait("sign me", answers=1)
        assert page.messages()[-1] == ("assistant", echo_reply([user("sign me")]))
        assert srv.stats.statuses == {200: 1}
    assert page.console_errors() == []


SIGN_VECTORS = [
    "1700000000000:Hello:2BC120D4-BB36-1B60-26DE-DB630472A3D8",
    "1732435200123:Привет, мир 🌍:2BC120D4-BB36-1B60-26DE-DB630472A3D8",
    "",
    "x" * 55,
    "y" * 56,
    "z" * 64,
    "é" * 1000,
]


def test_the_plain_sha256_fallback_matches_hashlib(driver: WebDriver) -> None:
    # The fallback signs where crypto.subtle is missing (plain http from another host).
    with GPROChatServer() as srv:
        ChatPage(driver, srv.url).open()
        digests = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "import('/static/sha256.js').then(m => done(arguments[0].map(m.sha256HexPlain)));",
            SIGN_VECTORS,
        )
    assert digests == [hashlib.sha256(text.encode()).hexdigest() for text in SIGN_VECTORS]


def test_a_question_asked_again_after_a_failure_is_sent_once(driver: WebDriver) -> None:
    # As upstream: of consecutive messages of one role only the last is sent.
    backend = ScriptedBackend([RuntimeError("down"), "ok"])
    with GPROChatServer(backend=backend) as srv:
        page = ChatPage(driver, srv.url).open()
        page.ask("first try")
        page.wait(lambda: page.idle() and page.error() is not None, "the error")
        page.ask_and_wait("second try", answers=1)
        assert page.messages() == [
            ("user", "first try"),
            ("user", "second try"),
            ("assistant", "ok"),
        ]
    assert backend.received == [[user("first try")], [user("second try")]]


REQUEST_TURNS_CASES = [
    # (history as (role, text), limit, system role) -> turns sent as (role, text)
    ([("user", "a")], 99, "", [("user", "a")]),
    (
        [("user", "a"), ("assistant", "b"), ("user", "c")],
        2,
        "",
        [("model", "b"), ("user", "c")],
    ),
    (
        [("user", "a"), ("assistant", "b"), ("user", "c")],
        2,
        "S",
        [("user", "S"), ("model", "b"), ("user", "c")],
    ),
    (
        [("user", "a"), ("assistant", "b"), ("user", "c")],
        3,
        "S $& $1 {content}",
        [
            ("user", SYSTEM_TEMPLATE.format(system="S $& $1 {content}", content="a")),
            ("model", "b"),
            ("user", "c"),
        ],
    ),
    (
        [("user", "a"), ("user", "b"), ("assistant", "x"), ("assistant", "y"), ("user", "c")],
        99,
        "",
        [("user", "b"), ("model", "y"), ("user", "c")],
    ),
]


def test_request_turns(driver: WebDriver) -> None:
    with GPROChatServer() as srv:
        ChatPage(driver, srv.url).open()
        cases = [
            [[{"role": r, "content": t} for r, t in history], limit, system]
            for history, limit, system, _ in REQUEST_TURNS_CASES
        ]
        got = driver.execute_async_script(
            "const [cases, template, done] = arguments;"
            "import('/static/conversation.js').then(m => done(cases.map(([h, max, s]) =>"
            " m.requestTurns(h, max, s, template))));",
            cases,
            SYSTEM_TEMPLATE,
        )
    want = [
        [{"role": r, "parts": [{"text": t}]} for r, t in turns] for *_, turns in REQUEST_TURNS_CASES
    ]
    assert got == want
