"""LangChain's standard integration tests for ChatGPROChat, against the local server.

The server runs on 127.0.0.1 with :class:`~tests.integration_tests.oracle.OracleBackend`,
a deterministic test double that stands in for a real model's judgement (it answers
"magic_function(3)" with a call to ``magic_function`` with ``{"input": 3}``, a joke
request with a JSON object of the schema, and so on). So these tests check the whole
client path (instructions, HTTP, streaming, parsing) honestly, but not a model's skill.

The server has two named backends, both oracles: ``gemini-1.5-pro`` (the default) and
``gemini-2.0-flash``, the suite's ``model_override_value``; a per-call ``model`` is sent
in the request and picks the second (an unknown name would get a 400).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_gprochat import ChatGPROChat
from langchain_gprochat.protocol import Part, Turn
from langchain_gprochat.server import GPROChatServer
from tests.standard_properties import GPROChatSuiteProperties

from .oracle import OracleBackend


@pytest.fixture(scope="class", autouse=True)
def _oracle_server(request: pytest.FixtureRequest) -> Iterator[None]:
    default, override = OracleBackend(), OracleBackend()
    backends = {"gemini-1.5-pro": default, "gemini-2.0-flash": override}
    with GPROChatServer(backend=backends) as server:
        request.cls.base_url = server.url
        request.cls.backends = backends
        yield


class TestChatGPROChatStandard(GPROChatSuiteProperties, ChatModelIntegrationTests):
    base_url: str = ""  # set by the class-scoped server fixture
    backends: dict[str, OracleBackend]  # likewise

    @property
    def supports_model_override(self) -> bool:
        # A per-call `model` is sent in the body; the server's named backends route it.
        return True

    def test_model_override_is_answered_by_the_backend_it_names(self, model: ChatGPROChat) -> None:
        default, override = self.backends.values()
        before = (len(default.received), len(override.received))
        model.invoke([HumanMessage("Which backend?")], model=self.model_override_value)
        assert (len(default.received), len(override.received)) == (before[0], before[1] + 1)
        assert override.received[-1] == [Turn(role="user", parts=[Part(text="Which backend?")])]

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "gemini-1.5-pro", "base_url": self.base_url}

    @property
    def supports_image_inputs(self) -> bool:
        # The protocol carries text parts only; image blocks raise ValueError.
        return False

    @property
    def supports_image_urls(self) -> bool:
        # The protocol carries text parts only.
        return False

    @property
    def supports_pdf_inputs(self) -> bool:
        # The protocol carries text parts only; file blocks raise ValueError.
        return False

    @property
    def supports_audio_inputs(self) -> bool:
        # The protocol carries text parts only; audio blocks raise ValueError.
        return False

    @property
    def supports_video_inputs(self) -> bool:
        # The protocol carries text parts only.
        return False

    @property
    def supports_image_tool_message(self) -> bool:
        # Tool results are rendered as text turns; image blocks cannot be sent.
        return False

    @property
    def supports_pdf_tool_message(self) -> bool:
        # Tool results are rendered as text turns; file blocks cannot be sent.
        return False

    @property
    def supports_anthropic_inputs(self) -> bool:
        # The test sends an Anthropic "thinking" block, which a text-only endpoint cannot take.
        return False

    @property
    def enable_vcr_tests(self) -> bool:
        # test_stream_time benchmarks recorded cassettes; there is no remote API to record.
        return False
