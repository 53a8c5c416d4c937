"""What both standard suites (unit and integration) need to know about ChatGPROChat."""

from __future__ import annotations

from langchain_gprochat import ChatGPROChat


class GPROChatSuiteProperties:
    """Mixed in before a langchain-tests class; the properties both suites share."""

    @property
    def chat_model_class(self) -> type[ChatGPROChat]:
        return ChatGPROChat

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
