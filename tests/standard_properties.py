"""What both standard suites (unit and integration) need to know about ChatGPROChat."""

from __future__ import annotations

from typing import Any

from langchain_gprochat import ChatGPROChat


class GPROChatSuiteProperties:
    """Mixed in before a langchain-tests class; the properties both suites share."""

    @property
    def chat_model_class(self) -> type[ChatGPROChat]:
        return ChatGPROChat

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # The endpoint has no sampling or length settings and no API key: ChatGPROChat
        # rejects `temperature`, `max_tokens` and `api_key` with a clear error instead of
        # silently ignoring them, so the suite's defaults leave them out.
        params: dict[str, Any] = super().standard_chat_model_params  # type: ignore[misc]
        for unsupported in ("temperature", "max_tokens", "api_key"):
            params.pop(unsupported, None)
        return params

    @property
    def model_override_value(self) -> str:
        # `model` is a per-call label reported in response_metadata["model_name"].
        return "gemini-2.0-flash"

    @property
    def supports_json_mode(self) -> bool:
        # Prompt-based: JSON_MODE_INSTRUCTIONS plus a JSON parser.
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        # The endpoint streams plain text with no token counts.
        return False
