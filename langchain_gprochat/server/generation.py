"""``generationConfig``: the sampling settings a request may carry (an extension).

The upstream app ignores the field. This server validates it, applies each setting to
its backend where the backend has that setting (a LangChain chat model with a field of
that name), and names what it applied in the ``X-GPROChat-Applied`` answer header, so
that the client can tell an honoured setting from an ignored one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from langchain_gprochat.protocol import GENERATION_CONFIG

__all__ = ["MODEL_FIELDS", "apply_generation", "parse_generation_config"]

MODEL_FIELDS: dict[str, tuple[str, ...]] = {
    "temperature": ("temperature",),
    "maxOutputTokens": ("max_output_tokens", "max_tokens", "num_predict", "max_new_tokens"),
    "topP": ("top_p",),
    "topK": ("top_k",),
}
"""Each ``generationConfig`` name and the chat-model fields that hold it, first match wins."""

_BOUNDS: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.0, math.inf),
    "maxOutputTokens": (int, 1, math.inf),
    "topP": (float, 0.0, 1.0),
    "topK": (int, 1, math.inf),
}


def parse_generation_config(body: Mapping[str, Any]) -> dict[str, float | int]:
    """The validated ``generationConfig`` of a request body (``{}`` when absent).

    Raises:
        ValueError: a message naming the field that is wrong and what it takes.
    """
    config = body.get(GENERATION_CONFIG)
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ValueError(f"{GENERATION_CONFIG} must be an object")
    settings: dict[str, float | int] = {}
    for name, value in config.items():
        if name not in _BOUNDS:
            continue  # as the upstream, unknown settings are ignored (and not confirmed)
        kind, low, high = _BOUNDS[name]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (kind is int and not float(value).is_integer()):
            raise ValueError(f"{GENERATION_CONFIG}.{name} must be a {kind.__name__}")
        if not low <= value <= high:
            raise ValueError(f"{GENERATION_CONFIG}.{name} must be between {low:g} and {high:g}")
        settings[name] = kind(value)
    return settings


def apply_generation(model: Any, settings: Mapping[str, float | int]) -> tuple[Any, list[str]]:
    """A copy of ``model`` with ``settings`` applied where it has them, and their names.

    ``model`` is a LangChain chat model (a pydantic model); a setting it has no field
    for is left out and not named.
    """
    fields = getattr(type(model), "model_fields", {})
    update: dict[str, Any] = {}
    applied: list[str] = []
    for name, value in settings.items():
        field = next((f for f in MODEL_FIELDS[name] if f in fields), None)
        if field is not None:
            update[field] = value
            applied.append(name)
    if not update:
        return model, []
    return model.model_copy(update=update), applied
