"""``gprochat-server``'s own chat page is discoverable like an upstream deployment.

The page's scripts inline the key in the signing template literal ``${t}:${m}:KEY``
(escaped as a JavaScript template literal) and the history limit as a number, as the
upstream bundle does; ``discover`` reads them back exactly, whatever the key holds.
"""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from langchain_gprochat import ChatGPROChat, adiscover

from ._support import Start

ODD_KEY = "Ke\"y'\\s`${z}é🌍</script>\tend\r\n"
FAST = {"timeout": 10.0, "first_byte_timeout": 5.0, "chunk_timeout": 5.0}


@pytest.mark.parametrize(
    ("key", "passwords", "limit"),
    [
        ("2BC120D4-BB36-1B60-26DE-DB630472A3D8", (), 99),
        (ODD_KEY, ("pw-a", "pw-b"), 13),
        ("", ("only",), 1),
    ],
    ids=["default", "odd-key", "no-key"],
)
async def test_discover_reads_the_servers_page(
    start: Start, key: str, passwords: tuple[str, ...], limit: int
) -> None:
    srv = await start(secret_key=key, passwords=passwords, max_history_messages=limit)
    password = passwords[-1] if passwords else None
    deployment = await adiscover(srv.url, password=password, **FAST)
    assert deployment.secret_key.get_secret_value() == key
    assert (deployment.max_history_messages, deployment.history_limit_found) == (limit, True)
    assert deployment.password_required is bool(passwords)
    assert deployment.password_accepted is (True if passwords else None)
    assert deployment.base_url == srv.url
    assert deployment.signing_script.startswith(f"{srv.url}/")
    assert srv.stats.requests == 0  # discovery sends no generate request


async def test_from_deployment_on_the_servers_page_answers_multi_turn(start: Start) -> None:
    srv = await start(secret_key=ODD_KEY, passwords=("pw",), max_history_messages=2)
    llm = await ChatGPROChat.afrom_deployment(srv.url, password="pw", discovery_timeout=10.0)
    history = [HumanMessage("one"), AIMessage("uno"), HumanMessage("two")]
    async with llm:
        answer = await llm.ainvoke(history)
    # the page's limit (2) keeps the last two turns; a leading model turn is dropped
    assert answer.content == "Echo · turn 1 · «two» ✓"
    assert dict(srv.stats.statuses) == {200: 1}
