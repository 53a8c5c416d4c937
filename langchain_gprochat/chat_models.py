"""``ChatGPROChat``: the LangChain chat model for gprochat-compatible endpoints."""

from __future__ import annotations

import ssl
import time
import warnings
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils import from_env, secret_from_env
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)

from langchain_gprochat._client import Client, CopyableLock
from langchain_gprochat._convert import messages_to_prompt, messages_to_turns
from langchain_gprochat._streaming import Assembler
from langchain_gprochat._urls import has_userinfo, redact_url
from langchain_gprochat.protocol import (
    APPLIED_HEADER,
    DEFAULT_BASE_URL,
    DEFAULT_SECRET_KEY,
    GENERATION_SETTINGS,
    RequestEncoder,
    Turn,
)
from langchain_gprochat.structured import (
    StructuredMethod,
    response_format_instructions,
    structured_output,
)
from langchain_gprochat.tools import format_tools, normalize_tool_choice, tool_instructions
from langchain_gprochat.transport import TransportSettings

__all__ = ["ChatGPROChat"]

_UNSUPPORTED = {
    "n": "the endpoint returns one answer per request; call it again (or use `batch`)",
    "seed": "the endpoint has no seed setting",
    "frequency_penalty": "the gprochat protocol has no penalty settings",
    "presence_penalty": "the gprochat protocol has no penalty settings",
    "logprobs": "the endpoint streams plain text, without token probabilities",
    "top_logprobs": "the endpoint streams plain text, without token probabilities",
    "logit_bias": "the gprochat protocol has no logit bias setting",
}
"""Parameters of other chat models that this endpoint cannot honour, and why."""

_CALL_ARGUMENTS = ("model", "stop", *GENERATION_SETTINGS, "tools", "tool_choice", "response_format")


def _unsupported(name: str) -> str:
    return f"ChatGPROChat does not take `{name}`: {_UNSUPPORTED[name]}."


_TRANSPORT = TransportSettings(base_url=DEFAULT_BASE_URL)
"""The transport's defaults, which the fields of the same meaning take."""

_SAME_AS_TRANSPORT = tuple(
    name
    for name in TransportSettings.__dataclass_fields__
    if name not in ("total_timeout", "headers")
)
"""Fields passed to the transport as they are (``timeout`` and the headers are not)."""


def _check_call_arguments(kwargs: Mapping[str, Any]) -> None:
    """Refuse per-call arguments left over, with the message construction gives."""
    for name in kwargs:
        if name in _UNSUPPORTED:
            raise TypeError(_unsupported(name))
    if kwargs:
        raise TypeError(
            f"ChatGPROChat got unexpected call arguments: {sorted(kwargs)}; a call takes "
            f"{', '.join(_CALL_ARGUMENTS)}"
        )


@dataclass(frozen=True)
class _Call:
    """One prepared call: the body to send, the chunk assembler, the header check."""

    body: Callable[[], bytes]
    assembler: Assembler
    on_response: Callable[[Mapping[str, str]], None] | None


class ChatGPROChat(BaseChatModel):
    """Chat model for gprochat.com and self-hosted GeminiProChat deployments.

    The endpoint (``POST {base_url}/api/generate``) takes a signed list of ``user`` and
    ``model`` turns and streams the answer as plain text. This class converts LangChain
    messages into those turns, signs the request, and streams the answer back as
    ``AIMessageChunk`` objects; tool calling and structured output work by prompting
    and parsing, since the endpoint takes and returns text only.

    Setup:
        Install the package; for an offline endpoint run the bundled server.

        .. code-block:: bash

            pip install langchain-gprochat
            gprochat-server  # optional: a local endpoint on http://127.0.0.1:3000
            export GPROCHAT_BASE_URL="http://127.0.0.1:3000"

    Key init args — connection:
        base_url: str
            Root URL of the deployment. Env ``GPROCHAT_BASE_URL``; default
            ``https://gprochat.com``.
        secret_key: SecretStr
            The deployment's ``PUBLIC_SECRET_KEY`` used to sign requests. Env
            ``GPROCHAT_SECRET_KEY``; default gprochat.com's public key.
        password: SecretStr | None
            The site password, where the deployment has one. Env ``GPROCHAT_PASSWORD``.
        proxy: str | None
            ``http://``, ``https://`` or (with the ``socks`` extra) ``socks5://`` proxy.
            Env ``GPROCHAT_PROXY``.
        verify: bool | str
            Verify TLS certificates (default), ``False`` to skip, or a CA bundle path.
        ssl_context: ssl.SSLContext | None
            A complete TLS context, which takes precedence over ``verify``.

    Key init args — behaviour:
        model: str
            A label for metadata and tracing; the deployment picks the real model.
        history_mode: "native" | "prompt"
            ``native`` sends role/parts turns like the web app; ``prompt`` flattens the
            conversation into one user message, like the gpt4free provider.
        max_retries: int
            Retries on connection errors, timeouts before the first byte and statuses
            408, 429, 500, 502, 503, 504.
        timeout, connect_timeout, first_byte_timeout, chunk_timeout: float | None
            Whole request, TCP/TLS connect, time to first byte, gap between chunks.

    Instantiate:
        .. code-block:: python

            from langchain_gprochat import ChatGPROChat

            llm = ChatGPROChat(base_url="http://127.0.0.1:3000")

    Invoke:
        .. code-block:: python

            messages = [
                ("system", "You are a helpful translator."),
                ("human", "Translate 'I love programming' into French."),
            ]
            llm.invoke(messages)

    Stream:
        .. code-block:: python

            for chunk in llm.stream(messages):
                print(chunk.text, end="", flush=True)

    Async:
        .. code-block:: python

            await llm.ainvoke(messages)
            async for chunk in llm.astream(messages):
                print(chunk.text, end="", flush=True)
            await llm.abatch([messages, messages])

    Tool calling:
        .. code-block:: python

            from pydantic import BaseModel, Field


            class GetWeather(BaseModel):
                '''Get the current weather in a given location.'''

                location: str = Field(..., description="The city, e.g. Paris")


            llm_with_tools = llm.bind_tools([GetWeather])
            ai_msg = llm_with_tools.invoke("What is the weather like in Paris?")
            ai_msg.tool_calls

    Structured output:
        .. code-block:: python

            class Joke(BaseModel):
                '''Joke to tell user.'''

                setup: str
                punchline: str


            llm.with_structured_output(Joke).invoke("Tell me a joke about cats")

    Resources:
        One HTTP session serves all calls on one event loop, and one more (on a private
        loop that the calling threads drive) serves all sync calls. They close when
        their loop shuts down, when the model is garbage collected, or explicitly with
        ``close()`` / ``await aclose()`` or ``with ChatGPROChat(...) as llm:``.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, extra="forbid")

    model: str = Field(default="gemini-1.5-pro", alias="model_name")
    """A label for metadata and tracing; the deployment decides the real model."""

    base_url: str = Field(
        default_factory=from_env("GPROCHAT_BASE_URL", default=DEFAULT_BASE_URL),
        validate_default=True,
    )
    """Root URL of the deployment (env ``GPROCHAT_BASE_URL``)."""

    secret_key: SecretStr = Field(
        default_factory=secret_from_env("GPROCHAT_SECRET_KEY", default=DEFAULT_SECRET_KEY)
    )
    """The deployment's ``PUBLIC_SECRET_KEY`` (env ``GPROCHAT_SECRET_KEY``)."""

    password: SecretStr | None = Field(
        default_factory=secret_from_env("GPROCHAT_PASSWORD", default=None)
    )
    """The site password, or ``None`` (env ``GPROCHAT_PASSWORD``)."""

    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("GPROCHAT_API_KEY", default=None)
    )
    """Sent as ``Authorization: Bearer <api_key>``, for a deployment behind an
    authenticating gateway (env ``GPROCHAT_API_KEY``). The upstream app has no API key
    and ignores the header."""

    temperature: float | None = Field(default=None, ge=0)
    """Sampling temperature, sent as ``generationConfig.temperature``."""

    max_tokens: int | None = Field(default=None, ge=1, alias="max_output_tokens")
    """Longest answer in tokens, sent as ``generationConfig.maxOutputTokens``."""

    top_p: float | None = Field(default=None, ge=0, le=1)
    """Nucleus sampling, sent as ``generationConfig.topP``."""

    top_k: int | None = Field(default=None, ge=1)
    """Top-k sampling, sent as ``generationConfig.topK``."""

    history_mode: Literal["native", "prompt"] = "native"
    """``native``: role/parts turns; ``prompt``: one flattened user message."""

    max_history_messages: int | None = Field(default=None, ge=1)
    """Send only this many of the latest turns (``None``: all of them)."""

    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Stop sequences applied to every call unless the call gives its own."""

    streaming: bool = False
    """Stream internally in ``invoke`` (so callbacks see tokens)."""

    timeout: float | None = Field(default=_TRANSPORT.total_timeout, alias="request_timeout", gt=0)
    """Seconds for the whole request, ``None`` for no limit."""

    connect_timeout: float | None = Field(default=_TRANSPORT.connect_timeout, gt=0)
    """Seconds to establish the TCP (and TLS) connection."""

    first_byte_timeout: float | None = Field(default=_TRANSPORT.first_byte_timeout, gt=0)
    """Seconds from sending the request to the first byte of the answer."""

    chunk_timeout: float | None = Field(default=_TRANSPORT.chunk_timeout, gt=0)
    """Largest gap in seconds between two chunks of the answer."""

    max_retries: int = Field(default=_TRANSPORT.max_retries, ge=0)
    """How many times a failed request is retried (never after text arrived)."""

    retry_base_delay: float = Field(default=_TRANSPORT.retry_base_delay, ge=0)
    """First backoff delay in seconds; doubles each retry, with jitter."""

    retry_max_delay: float = Field(default=_TRANSPORT.retry_max_delay, ge=0)
    """Largest backoff delay in seconds."""

    retry_after_max: float = Field(default=_TRANSPORT.retry_after_max, ge=0)
    """Cap in seconds on a server's ``Retry-After``."""

    proxy: str | None = Field(
        default_factory=from_env("GPROCHAT_PROXY", default=None),
        repr=False,
        validate_default=True,
    )
    """Proxy URL: http, https or (``socks`` extra) socks4/socks5 (env ``GPROCHAT_PROXY``)."""

    verify: bool | str = True
    """Verify TLS certificates: ``True``, ``False``, or a CA bundle path."""

    ssl_context: ssl.SSLContext | None = Field(default=None, exclude=True)
    """A TLS context to use instead of ``verify``."""

    default_headers: dict[str, str] | None = None
    """Extra headers sent with every request (for example ``origin``/``referer``)."""

    max_connections: int = Field(default=_TRANSPORT.max_connections, ge=1)
    """Size of the connection pool of each session."""

    _client: Client | None = PrivateAttr(default=None)
    _client_lock: CopyableLock = PrivateAttr(default_factory=CopyableLock)
    _unconfirmed: set[str] = PrivateAttr(default_factory=set)
    """Settings already warned about as not confirmed by the endpoint (once each)."""

    # -- validation -----------------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _reject_unsupported(cls, values: Any) -> Any:
        if isinstance(values, dict):
            for name in _UNSUPPORTED:
                if name in values:
                    raise ValueError(_unsupported(name))
        return values

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {value!r}")
        return value.rstrip("/")

    @field_validator("proxy")
    @classmethod
    def _check_proxy(cls, value: str | None) -> str | None:
        schemes = ("http://", "https://", "socks4://", "socks5://", "socks5h://")
        if value and not value.startswith(schemes):
            raise ValueError("proxy must be an http://, https://, socks4:// or socks5:// URL")
        return value or None

    @field_validator("stop")
    @classmethod
    def _check_stop(cls, value: list[str] | None) -> list[str] | None:
        return value or None

    # -- LangChain metadata ---------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "gprochat"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """ChatGPROChat can be serialized with ``dumpd``; secrets are left out."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """``["langchain_gprochat", "chat_models"]``."""
        return ["langchain_gprochat", "chat_models"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Secret fields and the env vars they load from.

        ``base_url`` and ``proxy`` count as secrets when they carry credentials
        (``https://user:password@host``); ``load`` then takes them from ``secrets_map``.
        """
        secrets = {
            "secret_key": "GPROCHAT_SECRET_KEY",
            "password": "GPROCHAT_PASSWORD",
            "api_key": "GPROCHAT_API_KEY",
        }
        if has_userinfo(self.base_url):
            secrets["base_url"] = "GPROCHAT_BASE_URL"
        if has_userinfo(self.proxy):
            secrets["proxy"] = "GPROCHAT_PROXY"
        return secrets

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "base_url" else value

    @field_serializer("base_url", "proxy")
    def _serialize_url(self, value: str | None) -> str | None:
        """URLs as ``model_dump`` gives them: credentials replaced by ``***``."""
        return None if value is None else redact_url(value)

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "base_url": redact_url(self.base_url),
            "history_mode": self.history_mode,
            **self._generation(),
        }

    def _generation(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The standard generation settings that are set, call overrides applied."""
        values = {name: getattr(self, name) for name in GENERATION_SETTINGS}
        values.update(overrides or {})
        return {name: value for name, value in values.items() if value is not None}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="gprochat",
            ls_model_name=kwargs.get("model") or self.model,
            ls_model_type="chat",
        )
        generation = self._generation(
            {name: kwargs[name] for name in GENERATION_SETTINGS if name in kwargs}
        )
        if "temperature" in generation:
            params["ls_temperature"] = generation["temperature"]
        if "max_tokens" in generation:
            params["ls_max_tokens"] = generation["max_tokens"]
        if ls_stop := stop or self.stop:
            params["ls_stop"] = ls_stop
        return params

    # -- resources ------------------------------------------------------------------

    def _settings(self) -> TransportSettings:
        return TransportSettings(
            **{name: getattr(self, name) for name in _SAME_AS_TRANSPORT},
            total_timeout=self.timeout,
            headers=self._headers(),
        )

    def _headers(self) -> dict[str, str]:
        headers = dict(self.default_headers or {})
        if self.api_key is not None:
            headers["Authorization"] = f"Bearer {self.api_key.get_secret_value()}"
        return headers

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

    # -- request building -----------------------------------------------------------

    def _turns(self, messages: Sequence[BaseMessage]) -> list[Turn]:
        if self.history_mode == "prompt":
            return messages_to_prompt(messages)
        return messages_to_turns(messages, max_history_messages=self.max_history_messages)

    def _body_factory(
        self, messages: Sequence[BaseMessage], generation: Mapping[str, Any]
    ) -> Callable[[], bytes]:
        turns = self._turns(messages)  # raises ValueError before any I/O
        encoder = RequestEncoder(
            turns,
            password=None if self.password is None else self.password.get_secret_value(),
            secret_key=self.secret_key.get_secret_value(),
            generation_config={GENERATION_SETTINGS[k]: v for k, v in generation.items()},
        )
        return lambda: encoder.encode(time.time_ns() // 1_000_000)

    def _prepare(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> _Call:
        kwargs = dict(kwargs)
        model_name = kwargs.pop("model", None) or self.model
        if "max_output_tokens" in kwargs:
            kwargs.setdefault("max_tokens", kwargs.pop("max_output_tokens"))
        generation = self._generation(
            {name: kwargs.pop(name) for name in GENERATION_SETTINGS if name in kwargs}
        )
        messages, tool_names = self._apply_tools(messages, kwargs)
        _check_call_arguments(kwargs)
        assembler = Assembler(model_name, stop if stop is not None else self.stop, tool_names)
        body = self._body_factory(messages, generation)
        return _Call(body, assembler, self._confirmation(generation))

    def _confirmation(
        self, generation: Collection[str]
    ) -> Callable[[Mapping[str, str]], None] | None:
        """Warns (once per model and setting) about settings the endpoint did not confirm."""
        if not generation:
            return None

        def check(headers: Mapping[str, str]) -> None:
            applied = {name.strip() for name in headers.get(APPLIED_HEADER, "").split(",")}
            for name in generation:
                wire = GENERATION_SETTINGS[name]
                if wire in applied or name in self._unconfirmed:
                    continue
                self._unconfirmed.add(name)
                warnings.warn(
                    f"{redact_url(self.base_url)} did not confirm `{name}` (sent as "
                    f"generationConfig.{wire}): the endpoint may ignore it, as the upstream "
                    "GeminiProChat app does. gprochat-server applies it where its backend "
                    "model has that setting.",
                    UserWarning,
                    stacklevel=2,
                )

        return check

    @staticmethod
    def _apply_tools(
        messages: list[BaseMessage], kwargs: dict[str, Any]
    ) -> tuple[list[BaseMessage], list[str] | None]:
        """Put tool and response-format instructions in front of the conversation.

        Pops ``tools``, ``tool_choice`` and ``response_format`` from ``kwargs``; returns
        the messages to send and the tool names to parse calls for (``None``: plain
        text).
        """
        tools = kwargs.pop("tools", None)
        tool_choice = kwargs.pop("tool_choice", None)
        response_format = kwargs.pop("response_format", None)
        instructions: list[str] = []
        tool_names: list[str] | None = None
        if tools:
            formatted = format_tools(tools)
            names = [tool["function"]["name"] for tool in formatted]
            choice = normalize_tool_choice(tool_choice, names)
            instructions.append(tool_instructions(formatted, choice))
            if choice != "none":
                tool_names = names
        elif tool_choice not in (None, "auto", "none"):
            raise ValueError(f"tool_choice={tool_choice!r} was given without any tools")
        if response_format is not None:
            instructions.append(response_format_instructions(response_format))
        if instructions:
            messages = [SystemMessage("\n\n".join(instructions)), *messages]
        return messages, tool_names

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

    async def _collect(self, call: _Call) -> ChatResult:
        """The whole answer, not streamed: an interrupted answer is retried whole."""
        assembler = call.assembler
        client = self.client  # held by this frame until the answer is in
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
        return await self._collect(self._prepare(messages, stop, kwargs))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._prepare(messages, stop, kwargs)
        return self.client.sync_loop.run(self._collect(call))
