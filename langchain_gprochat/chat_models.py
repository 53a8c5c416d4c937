"""``ChatGPROChat``: the LangChain chat model for gprochat-compatible endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, TypeVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import BaseModel, SecretStr

from langchain_gprochat._client import Client
from langchain_gprochat._config import GPROChatFields
from langchain_gprochat._request import Call, prepare_call
from langchain_gprochat._structured import StructuredMethod, structured_output
from langchain_gprochat._tools import format_tools, normalize_tool_choice

__all__ = ["ChatGPROChat"]

_M = TypeVar("_M", bound="ChatGPROChat")


class ChatGPROChat(GPROChatFields):
    r"""Chat model for gprochat.com and self-hosted GeminiProChat deployments.

    The endpoint (``POST {base_url}/api/generate``) takes a signed list of ``user`` and
    ``model`` turns and streams the answer as plain text. This class converts LangChain
    messages into those turns, signs the request, and streams the answer back as
    ``AIMessageChunk`` objects; tool calling and structured output work by prompting
    and parsing, since the endpoint takes and returns text only.

    Setup:
        The package is not on PyPI yet: install it from a clone of its repository
        (`pip install -e .`). For an offline endpoint, run the bundled server.

        ```bash
        pip install -e .
        gprochat-server  # optional: a local endpoint on http://127.0.0.1:3000
        export GPROCHAT_BASE_URL="http://127.0.0.1:3000"
        ```

    Key init args (connection):
        base_url: str
            Root URL of the deployment. Env `GPROCHAT_BASE_URL`; default
            `https://gprochat.com`.
        secret_key: SecretStr
            The deployment's `PUBLIC_SECRET_KEY` used to sign requests. Env
            `GPROCHAT_SECRET_KEY`; default gprochat.com's public key.
        password: SecretStr | None
            The site password, where the deployment has one. Env `GPROCHAT_PASSWORD`.
        proxy: str | None
            `http://`, `https://` or (with the `socks` extra) `socks5://` proxy.
            Env `GPROCHAT_PROXY`.
        verify: bool | str
            Verify TLS certificates (default), `False` to skip, or a CA bundle path.
        ssl_context: ssl.SSLContext | None
            A complete TLS context, which takes precedence over `verify`.

    Key init args (generation):
        temperature, max_tokens, top_p, top_k: float | int | None
            LangChain's standard parameters, sent as `generationConfig` and confirmed
            by the endpoint, or warned about once (the upstream app ignores them).
        stop: list[str] | None
            Stop sequences, applied by the client.

    Key init args (behaviour):
        model: str
            A label for metadata and tracing; the deployment picks the real model.
        history_mode: "native" | "prompt"
            `native` sends role/parts turns like the web app; `prompt` flattens the
            conversation into one user message, like the gpt4free provider.
        max_retries: int
            Retries on connection errors, timeouts before the first byte, statuses
            408, 429, 500, 502, 503, 504, and (for a call that is not streamed) an
            answer cut mid-stream.
        timeout, connect_timeout, first_byte_timeout, chunk_timeout: float | None
            Whole request, TCP/TLS connect, time to first byte, gap between chunks.

    Instantiate:
        The outputs below come from `gprochat-server`'s offline echo backend, which
        answers `Echo · turn {n} · «{the last user turn}» ✓` (system text folded into
        the first user turn, as the endpoint receives it).

        ```python
        from langchain_gprochat import ChatGPROChat

        llm = ChatGPROChat(base_url="http://127.0.0.1:3000")
        ```

    Invoke:
        ```python
        messages = [
            ("system", "You are a helpful translator."),
            ("human", "Translate 'I love programming' into French."),
        ]
        llm.invoke(messages).content
        ```

        ```
        "Echo · turn 1 · «[System instructions]\nYou are a helpful translator.\n[End of
        system instructions]\n\nTranslate 'I love programming' into French.» ✓"
        ```

    Stream:
        ```python
        for chunk in llm.stream("Hi"):
            print(chunk.text, end="", flush=True)
        ```

        ```
        Echo · turn 1 · «Hi» ✓
        ```

    Async:
        ```python
        (await llm.ainvoke("Hi")).content
        async for chunk in llm.astream("Hi"):
            print(chunk.text, end="", flush=True)
        [m.content for m in await llm.abatch(["a", "b"])]
        ```

        ```
        'Echo · turn 1 · «Hi» ✓'
        Echo · turn 1 · «Hi» ✓
        ['Echo · turn 1 · «a» ✓', 'Echo · turn 1 · «b» ✓']
        ```

    Tool calling:
        The tools are described to the model in its instructions, and its reply is
        parsed back into tool calls (here from a scripted backend that answers
        `{"tool_calls": [{"name": "GetWeather", "arguments": {"location": "Paris"}}]}`).

        ```python
        from pydantic import BaseModel, Field


        class GetWeather(BaseModel):
            '''Get the current weather in a given location.'''

            location: str = Field(..., description="The city, e.g. Paris")


        llm_with_tools = llm.bind_tools([GetWeather])
        ai_msg = llm_with_tools.invoke("What is the weather like in Paris?")
        ai_msg.tool_calls
        ```

        ```
        [{'name': 'GetWeather', 'args': {'location': 'Paris'}, 'id': 'call_…',
          'type': 'tool_call'}]
        ```

    Structured output:
        ```python
        class Joke(BaseModel):
            '''Joke to tell user.'''

            setup: str
            punchline: str


        llm.with_structured_output(Joke).invoke("Tell me a joke about cats")
        ```

        ```
        Joke(setup='Why do cats sit on keyboards?', punchline='To keep an eye on the mouse.')
        ```

    Resources:
        One HTTP session serves all calls on one event loop, and one more (on a private
        loop that the calling threads drive) serves all sync calls. They close when
        their loop shuts down, when the model is garbage collected, or explicitly with
        `close()` / `await aclose()` or `with ChatGPROChat(...) as llm:`.
    """

    @property
    def _llm_type(self) -> str:
        return "gprochat"

    @property
    def client(self) -> Client:
        """The network resources for the current settings, made on first use.

        A model's calls always follow its current settings: after an assignment
        (``llm.base_url = ...``) or in a copy (``model_copy(update=...)``), the next call
        gets a client of its own. In a forked child the inherited client is abandoned,
        never used or closed, since its connections are the parent's.
        """
        settings = self._settings()
        client = self._client
        if client is not None and client.serves(id(self), settings):
            return client
        with self._client_lock:
            client = self._client
            if client is not None and client.serves(id(self), settings):
                return client
            fresh = Client(settings, id(self))
            if client is not None and client.foreign:
                client.abandon()
                fresh.inherited = client
            self._client = fresh
            return fresh

    def _release(self) -> Client | None:
        """Detach this model's own client, to close it (``None``: nothing of its own)."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is None or client.owner != id(self):
            return None
        if client.foreign:
            client.abandon()
            return None
        return client

    def close(self) -> None:
        """Close every HTTP session this model opened. It can be used again later.

        Resources of another model (the original of a copy) are never closed.
        """
        client = self._release()
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the sessions, awaiting the one of the running loop."""
        client = self._release()
        if client is not None:
            await client.transport.aclose()
            client.close()

    def __enter__(self) -> ChatGPROChat:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> ChatGPROChat:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @classmethod
    def from_deployment(
        cls: type[_M], base_url: str, password: str | SecretStr | None = None, **kwargs: Any
    ) -> _M:
        """A model for the GeminiProChat deployment at ``base_url``, read from its page.

        Discovers the deployment's ``secret_key``, ``max_history_messages`` and the
        ``origin``/``referer`` headers of its web client (see
        :func:`langchain_gprochat.discover`) with this model's timeouts, proxy and TLS
        settings; ``discovery_timeout`` (default 60 s) bounds the discovery. Arguments
        given in ``kwargs`` win over what was discovered.

        Raises:
            DiscoveryError: the page's settings could not be read, or the deployment
                requires a password that was not given (``password`` or
                ``GPROCHAT_PASSWORD``) or refused it.
        """
        from langchain_gprochat._deploy import from_deployment

        return from_deployment(cls, base_url, password, kwargs)

    @classmethod
    async def afrom_deployment(
        cls: type[_M], base_url: str, password: str | SecretStr | None = None, **kwargs: Any
    ) -> _M:
        """Async :meth:`from_deployment`."""
        from langchain_gprochat._deploy import afrom_deployment

        return await afrom_deployment(cls, base_url, password, kwargs)

    # -- request building -----------------------------------------------------------

    def _prepare(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Call:
        return prepare_call(self, messages, stop, kwargs)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools, described to the model in its instructions.

        Args:
            tools: pydantic classes, functions, LangChain tools or JSON-schema /
                OpenAI tool dicts.
            tool_choice: ``"auto"`` (or ``None``), ``"any"``/``"required"``/``True``,
                ``"none"``/``False``, a tool's name, or
                ``{"type": "function", "function": {"name": ...}}``.
            **kwargs: other call arguments to bind.
        """
        formatted = format_tools(tools)
        choice = normalize_tool_choice(tool_choice, [t["function"]["name"] for t in formatted])
        return super().bind(tools=formatted, tool_choice=choice, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: StructuredMethod = "function_calling",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Answer in the shape of ``schema`` (a pydantic class, TypedDict or JSON schema).

        Args:
            schema: the output schema.
            method: ``"function_calling"`` (a forced tool call, the default),
                ``"json_schema"`` (the schema in the instructions) or ``"json_mode"``.
            include_raw: return ``{"raw", "parsed", "parsing_error"}`` instead of raising
                ``OutputParserException`` on a reply that does not parse.
            strict: with a pydantic class, the reply is validated by it whatever the
                value; ``True`` with another kind of schema raises ``ValueError``.
            **kwargs: not supported; any raises ``TypeError``.
        """
        if kwargs:
            raise TypeError(f"with_structured_output got unexpected arguments: {sorted(kwargs)}")
        if schema is None:
            raise ValueError("with_structured_output needs a schema")
        return structured_output(
            self, schema, method=method, include_raw=include_raw, strict=strict
        )

    # -- LangChain hooks ------------------------------------------------------------

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        call = self._prepare(messages, stop, kwargs)
        assembler = call.assembler
        client = self.client  # held by this frame until the stream ends
        stream = client.transport.stream(call.body, on_response=call.on_response)
        try:
            async for text in stream:
                for chunk in assembler.feed(text):
                    if run_manager is not None:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
                if assembler.stopped:
                    break
        finally:
            await stream.aclose()
        for chunk in assembler.finish():
            if run_manager is not None and chunk.text:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        call = self._prepare(messages, stop, kwargs)
        assembler = call.assembler
        client = self.client
        texts = client.sync_loop.iterate(
            client.transport.stream(call.body, on_response=call.on_response)
        )
        try:
            for text in texts:
                for chunk in assembler.feed(text):
                    if run_manager is not None:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
                if assembler.stopped:
                    break
        finally:
            texts.close()
        for chunk in assembler.finish():
            if run_manager is not None and chunk.text:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _collect(self, call: Call, client: Client) -> ChatResult:
        """The whole answer, not streamed: an interrupted answer is retried whole.

        ``client`` is the one the caller looked up once for this call (this frame holds
        it until the answer is in).
        """
        assembler = call.assembler
        stream = client.transport.stream(
            call.body, on_response=call.on_response, restart=assembler.reset
        )
        try:
            async for text in stream:
                assembler.collect(text)
                if assembler.stopped:
                    break
        finally:
            await stream.aclose()
        return ChatResult(generations=[ChatGeneration(message=assembler.message())])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await self._collect(self._prepare(messages, stop, kwargs), self.client)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._prepare(messages, stop, kwargs)
        client = self.client
        return client.sync_loop.run(self._collect(call, client))
