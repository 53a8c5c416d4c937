"""The chat page in a real headless Chromium: the password gate, hostile answers, errors."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from langchain_gprochat.server import Fault, GPROChatServer, ScriptedBackend, echo_reply

from ._page import ChatPage, GatedBackend, user


@pytest.fixture(autouse=True)
def _clean_console(driver: WebDriver) -> None:
    driver.get_log("browser")  # drop what earlier tests left


def _enter_password(page: ChatPage, password: str) -> None:
    field = page.by_id("gate-password")
    field.clear()
    field.send_keys(password, Keys.ENTER)


def test_the_password_gate_refuses_a_wrong_password_and_remembers_a_right_one(
    driver: WebDriver,
) -> None:
    with GPROChatServer(passwords=("s3cret", "other")) as srv:
        page = ChatPage(driver, srv.url).open()
        assert page.shown("gate")
        assert not page.shown("chat")
        _enter_password(page, "wrong")
        page.wait(lambda: page.by_id("gate-error").text != "", "the refusal")
        assert page.by_id("gate-error").text == "Invalid password."
        assert page.shown("gate")
        assert not page.shown("chat")
        assert page.stored("pass") is None

        _enter_password(page, "s3cret")
        page.wait(lambda: page.shown("chat"), "the chat")
        assert not page.shown("gate")
        assert page.stored("pass") == "s3cret"
        page.ask_and_wait("behind the gate", answers=1)
        assert page.messages()[-1] == ("assistant", echo_reply([user("behind the gate")]))

        page.reload()  # remembered, as upstream: localStorage "pass"
        assert page.shown("chat")
        assert not page.shown("gate")

        page.js("localStorage.setItem('pass', 'revoked')")
        page.reload()
        assert page.shown("gate")
        assert not page.shown("chat")
    assert srv.stats.statuses == {200: 1}
    assert page.console_errors() == []


HOSTILE_HTML = (
    '<img src=x onerror="window.__pwned = 1"> '
    '<a id="raw" href="javascript:window.__pwned=3">raw</a> '
    "<script>window.__pwned = 4</script>"
    '<svg><animate onbegin="window.__pwned=5" attributeName="x" dur="1s"/></svg>'
    '<iframe src="javascript:parent.__pwned=6"></iframe>'
    '<p style="color:red" onclick="window.__pwned=7">styled</p>'
)
HOSTILE_MARKDOWN = (
    "[click me](javascript:window.__pwned=2) [case](JaVaScRiPt:window.__pwned=8) "
    "[data](data:text/html,<b>x</b>) ![pic](javascript:window.__pwned=9)"
)


def test_a_hostile_answer_renders_inert(driver: WebDriver) -> None:
    # As upstream (markdown-it, html: false), raw HTML shows as text; what Markdown
    # makes of hostile links and images, DOMPurify defuses.
    answer_text = f"Look: {HOSTILE_HTML}\n\n{HOSTILE_MARKDOWN}"
    with GPROChatServer(backend=ScriptedBackend([answer_text])) as srv:
        page = ChatPage(driver, srv.url).open()
        page.ask_and_wait("be nasty", answers=1)
        answer = page.content()
        for link in answer.find_elements(By.TAG_NAME, "a"):
            link.click()  # nothing may run, whatever is left of the links
        assert page.js("return window.__pwned") is None
        assert answer.find_element(By.CSS_SELECTOR, "p").text == f"Look: {HOSTILE_HTML}"
        nodes = page.js(
            "return [...arguments[0].querySelectorAll('*')]"
            ".map(node => [node.tagName, ...[...node.attributes]"
            ".map(a => a.name + '=' + a.value)])",
            answer,
        )
        assert nodes == [
            ["P"],
            ["P"],
            ["A"],  # no href is left: the links go nowhere
            ["A"],
            ["A"],
            ["IMG", "alt=pic"],  # no src either
        ]
        assert [a.text for a in answer.find_elements(By.TAG_NAME, "a")] == [
            "click me",
            "case",
            "data",
        ]
        assert page.stored()[-1] == {"role": "assistant", "content": answer_text}
        assert len(driver.window_handles) == 1  # no link opened anything
    assert page.console_errors() == []


def _generate_errors(page: ChatPage) -> list[str]:
    """Console errors, without Chromium's own line for each failed /api/generate."""
    return [e for e in page.console_errors() if "/api/generate - Failed to load resource" not in e]


@pytest.mark.parametrize(
    ("fault", "shown"),
    [
        (
            Fault(status=503, body='{"error":{"message":"Overloaded, try again later."}}'),
            ("", "Overloaded, try again later."),
        ),
        (
            Fault(status=429, body='{"error":{"code":"RESOURCE_EXHAUSTED","message":"Quota."}}'),
            ("RESOURCE_EXHAUSTED", "Quota."),
        ),
        (
            Fault(status=502, body="<html><b>Bad gateway</b></html>"),
            ("HTTP 502 Bad Gateway", "<html><b>Bad gateway</b></html>"),
        ),
        (
            Fault(status=500, body=""),
            (
                "HTTP 500 Internal Server Error",
                "The server answered with an error and no explanation.",
            ),
        ),
    ],
)
def test_api_errors_are_shown_readably(
    driver: WebDriver, fault: Fault, shown: tuple[str, str]
) -> None:
    with GPROChatServer(enable_faults=True, fault=fault) as srv:
        page = ChatPage(driver, srv.url).open()
        page.ask("fail please")
        page.wait(lambda: page.idle() and page.error() is not None, "the error")
        assert page.error() == shown
        assert page.messages() == [("user", "fail please")]
        assert page.content().find_elements(By.TAG_NAME, "b") == []
    assert _generate_errors(page) == []


def test_a_backend_failure_is_shown_and_regenerate_recovers(driver: WebDriver) -> None:
    backend = ScriptedBackend([RuntimeError("model is down"), "back again"])
    with GPROChatServer(backend=backend) as srv:
        page = ChatPage(driver, srv.url).open()
        page.ask("are you there?")
        page.wait(lambda: page.idle() and page.error() is not None, "the error")
        assert page.error() == ("RuntimeError", "model is down")
        page.click("#error-retry")
        page.wait_answers(1)
        assert page.error() is None
        assert page.messages() == [("user", "are you there?"), ("assistant", "back again")]
    assert backend.received == [[user("are you there?")]] * 2
    assert _generate_errors(page) == []


def test_a_wrong_signature_is_shown_readably(driver: WebDriver) -> None:
    with GPROChatServer() as srv:
        page = ChatPage(driver, srv.url).open()
        page.js("localStorage.setItem('pass', 'ignored')")  # no password set: accepted
        page.driver.execute_script("document.getElementById('input').value = 'x'")
        # Tamper with the time after signing: the server must refuse the signature.
        page.js(
            "const real = window.fetch; window.fetch = (url, init) => {"
            " if (url === '/api/generate') { const b = JSON.parse(init.body); b.time += 1;"
            " init = { ...init, body: JSON.stringify(b) }; } return real(url, init); };"
        )
        page.click("#send")
        page.wait(lambda: page.idle() and page.error() is not None, "the error")
        assert page.error() == ("", "Invalid signature.")
    assert srv.stats.statuses == {401: 1}
    assert _generate_errors(page) == []


def test_a_broken_stream_keeps_the_partial_answer_and_says_so(driver: WebDriver) -> None:
    # The connection closes after the first chunk and the first byte of "é": the page
    # keeps what arrived, and its streaming decoder never shows half a character.
    backend = GatedBackend("Partial answer", "é never sent", later=["Whole answer"])
    fault = Fault(close_after_bytes=len(b"Partial answer") + 1, times=1)
    with GPROChatServer(backend=backend, enable_faults=True, fault=fault) as srv:
        page = ChatPage(driver, srv.url).open()
        page.ask("break")
        page.wait_streaming("Partial answer", "the first part")
        backend.release.set()
        page.wait(lambda: page.idle() and page.error() is not None, "the error")
        assert page.error() == ("", "The answer broke off: network error")
        assert page.stored()[-1] == {"role": "assistant", "content": "Partial answer"}
        page.click("#error-retry")  # replaces the partial answer
        page.wait(lambda: page.idle() and page.error() is None, "the retry")
        assert page.messages() == [("user", "break"), ("assistant", "Whole answer")]
    assert backend.received == [[user("break")]] * 2
    assert _generate_errors(page) == []


def test_no_page_gives_404(driver: WebDriver) -> None:
    with GPROChatServer(page=False) as srv:
        for path in ("/", "/settings.js", "/static/app.js"):
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(srv.url + path, timeout=10)
            caught.value.close()
            assert caught.value.code == 404, path
        driver.get(srv.url + "/")
        assert driver.find_elements(By.ID, "chat") == []
