"""Driving the chat page: a thin page object over Selenium, and small backends."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from langchain_gprochat.protocol import Part, Turn

LIMIT = 15.0
"""Seconds any wait may take (a limit, never what a test measures)."""

STREAMING = "[data-streaming] .content"
"""The element of the answer being streamed."""

RECORD_STREAM = f"""
window.__seen = [];
const list = document.getElementById("messages");
new MutationObserver(() => {{
  const node = document.querySelector("{STREAMING}");
  if (node) window.__seen.push(node.textContent.trim());
}}).observe(list, {{ childList: true, subtree: true, characterData: true }});
"""


def user(text: str) -> Turn:
    return Turn(role="user", parts=[Part(text=text)])


def model(text: str) -> Turn:
    return Turn(role="model", parts=[Part(text=text)])


class GatedBackend:
    """Streams ``first``, then waits for ``release``, then ``rest``.

    Later requests get ``later`` replies in order, streamed at once.
    """

    def __init__(self, first: str, rest: str, later: list[str]) -> None:
        self.first, self.rest, self.later = first, rest, list(later)
        self.release = threading.Event()
        self.received: list[list[Turn]] = []

    async def stream(self, turns: list[Turn]) -> AsyncIterator[str]:
        self.received.append(list(turns))
        if len(self.received) > 1:
            yield self.later.pop(0)
            return
        yield self.first
        for _ in range(2000):  # at most 20 s, cancellable when the server stops
            if self.release.is_set():
                break
            await asyncio.sleep(0.01)
        yield self.rest


class ChatPage:
    """The chat page of a server at ``url``, in ``driver``."""

    def __init__(self, driver: WebDriver, url: str) -> None:
        self.driver, self.url = driver, url

    # -- navigation ------------------------------------------------------------------
    def open(self, *, fresh: bool = True) -> ChatPage:
        """Load the page; ``fresh`` first wipes the origin's localStorage."""
        if fresh:
            self.driver.execute_cdp_cmd(
                "Storage.clearDataForOrigin",
                {"origin": self.url, "storageTypes": "local_storage"},
            )
        self.driver.get(self.url + "/")
        self.wait(lambda: self.shown("chat") or self.shown("gate"), "the page to start")
        return self

    def reload(self) -> None:
        self.driver.refresh()
        self.wait(lambda: self.shown("chat") or self.shown("gate"), "the page to start")

    # -- reading ---------------------------------------------------------------------
    def by_id(self, element_id: str) -> WebElement:
        return self.driver.find_element(By.ID, element_id)

    def shown(self, element_id: str) -> bool:
        return bool(self.js(f"return !document.getElementById({element_id!r}).hidden"))

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def stored(self, key: str = "messageList") -> Any:
        raw = self.js("return localStorage.getItem(arguments[0])", key)
        return None if raw is None else json.loads(raw) if key == "messageList" else raw

    def messages(self) -> list[tuple[str, str]]:
        """(role, rendered text) of every archived message, in order."""
        rows = self.js(
            "return [...document.querySelectorAll('#messages > li:not([data-streaming])')]"
            ".map(li => [li.dataset.role, li.querySelector('.content').textContent.trim()])"
        )
        return [(role, text) for role, text in rows]

    def content(self, index: int = -1) -> WebElement:
        items = self.driver.find_elements(By.CSS_SELECTOR, "#messages > li .content")
        return items[index]

    def error(self) -> tuple[str, str] | None:
        if not self.shown("error"):
            return None
        code = self.by_id("error-code").text if self.shown("error-code") else ""
        return code, self.by_id("error-message").text

    # -- acting ----------------------------------------------------------------------
    def ask(self, text: str) -> None:
        field = self.by_id("input")
        field.send_keys(text)
        field.send_keys(Keys.ENTER)

    def idle(self) -> bool:
        return self.shown("composer") and not self.shown("thinking")

    def ask_and_wait(self, text: str, answers: int) -> None:
        """Ask, then wait until the page is idle with ``answers`` assistant messages."""
        self.ask(text)
        self.wait_answers(answers)

    def wait_answers(self, answers: int) -> None:
        def done() -> bool:
            roles = [role for role, _ in self.messages()]
            return self.idle() and roles.count("assistant") == answers

        self.wait(done, f"{answers} answers")

    def click(self, selector: str) -> None:
        self.driver.find_element(By.CSS_SELECTOR, selector).click()

    def wait(self, condition: Callable[[], bool], what: str) -> None:
        WebDriverWait(self.driver, LIMIT, poll_frequency=0.02).until(
            lambda _: condition(), message=f"timed out waiting for {what}"
        )

    def wait_streaming(self, text: str, what: str) -> None:
        """Wait until the answer being streamed shows ``text`` (whitespace trimmed)."""
        script = f"return document.querySelector('{STREAMING}')?.textContent.trim()"
        self.wait(lambda: self.js(script) == text, what)

    def console(self) -> list[dict[str, Any]]:
        """Browser log entries since the last call."""
        return list(self.driver.get_log("browser"))

    def console_errors(self) -> list[str]:
        return [entry["message"] for entry in self.console() if entry["level"] == "SEVERE"]
