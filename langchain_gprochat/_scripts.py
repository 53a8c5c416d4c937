"""The walk over a page's scripts: which to fetch, in what order, and what they hold.

Starts from what the page loads (:func:`~langchain_gprochat._bundle.parse_page`), then
the static imports of each chunk read, breadth first. Only same-origin scripts are
fetched, at most :attr:`DiscoveryLimits.max_scripts` of them, each at most
``max_script_bytes``; the walk stops once the signing key and the history limit are
found. Nothing is executed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from langchain_gprochat._bundle import (
    HistoryLimit,
    Page,
    SigningKey,
    find_history_limits,
    find_signing_keys,
    parse_page,
    static_imports,
)
from langchain_gprochat._fetch import Fetcher, RedirectRefused, origin_of, without_userinfo

if TYPE_CHECKING:
    from langchain_gprochat.discovery import DiscoveryLimits

__all__ = ["Findings", "script_path", "walk_scripts"]

_HTML_TYPES = ("text/html", "application/xhtml+xml")


def script_path(url: str) -> str:
    """``url`` as findings show it: its path (the origin is the page's)."""
    return urlsplit(url).path or "/"


@dataclass
class Findings:
    """What the walk found.

    Attributes:
        page: what the page loads and shows.
        keys: signing template literals, with the URL of the script each is in.
        histories: history limits, likewise.
        read: the scripts read, in order.
        notes: what was found along the way, one short phrase each (for errors).
    """

    page: Page
    keys: list[tuple[str, SigningKey]] = field(default_factory=list)
    histories: list[tuple[str, HistoryLimit]] = field(default_factory=list)
    read: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def scan(self, code: str, url: str) -> None:
        """Record what ``code`` (the script at ``url``) holds."""
        self.keys.extend((url, key) for key in find_signing_keys(code))
        self.histories.extend((url, limit) for limit in find_history_limits(code))

    @property
    def done(self) -> bool:
        """Whether both settings were found (the walk can stop)."""
        return bool(self.keys) and bool(self.histories)


class _Queue:
    """Script URLs to visit, each once, the page's own before the imports found later."""

    def __init__(self, urls: tuple[str, ...]) -> None:
        self._pending: deque[str] = deque()
        self._seen: set[str] = set()
        self.add(urls)

    def add(self, urls: tuple[str, ...] | list[str]) -> None:
        for url in urls:
            key = without_userinfo(url).split("#", 1)[0]
            if key not in self._seen:
                self._seen.add(key)
                self._pending.append(url)

    def __bool__(self) -> bool:
        return bool(self._pending)

    def pop(self) -> str:
        return self._pending.popleft()


async def walk_scripts(
    fetcher: Fetcher, page_url: str, html: str, limits: DiscoveryLimits
) -> Findings:
    """Read the page's scripts until the signing key and the history limit are found."""
    page = parse_page(html, page_url)
    found = Findings(page)
    describe = ", ".join(x for x in (page.title, page.generator) if x) or "untitled"
    found.notes.append(
        f"an HTML page ({describe}) loading {len(page.scripts)} scripts "
        f"and {len(page.inline)} inline ones"
    )
    queue = _Queue(page.scripts)
    for text in page.inline:
        found.scan(text, page_url)
        queue.add(static_imports(text, page_url))
    origin = origin_of(page_url)
    fetched = total = 0
    while queue and not found.done:
        url = queue.pop()
        if origin_of(url) != origin:
            found.notes.append(f"{without_userinfo(url)}: another origin, not fetched")
            continue
        if fetched >= limits.max_scripts:
            found.notes.append(f"more scripts than max_scripts ({limits.max_scripts}) allows")
            break
        if total >= limits.max_total_bytes:
            found.notes.append(f"more script bytes than max_total_bytes ({limits.max_total_bytes})")
            break
        fetched += 1
        code = await _fetch_script(fetcher, url, page_url, limits, found)
        if code is None:
            continue
        total += len(code)
        found.read.append(url)
        before = len(found.keys)
        found.scan(code, url)
        if len(found.keys) == before:
            found.notes.append(f"{script_path(url)}: {len(code)} characters, no signing code")
        queue.add(static_imports(code, url))
    return found


async def _fetch_script(
    fetcher: Fetcher, url: str, page_url: str, limits: DiscoveryLimits, found: Findings
) -> str | None:
    """The script's text, or ``None`` (with a note saying why) when it cannot be used."""
    headers = {"Accept": "*/*", "Referer": without_userinfo(page_url)}
    try:
        response = await fetcher.get(
            url, limit=limits.max_script_bytes, headers=headers, origin=origin_of(page_url)
        )
    except RedirectRefused as exc:
        found.notes.append(f"{script_path(url)}: a redirect that was not followed ({exc.why})")
        return None
    if response.status != 200:
        found.notes.append(f"{script_path(url)}: {response.status}")
        return None
    if response.truncated:
        found.notes.append(
            f"{script_path(url)}: larger than max_script_bytes "
            f"({limits.max_script_bytes}), not read"
        )
        return None
    if response.content_type in _HTML_TYPES:
        found.notes.append(f"{script_path(url)}: an HTML page, not a script")
        return None
    return response.body.decode("utf-8", "replace")
