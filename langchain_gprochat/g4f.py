"""gpt4free's ``GPROChat`` provider, rebuilt on this package: migrate by changing one import.

```python
from langchain_gprochat.g4f import GPROChat  # was: from g4f.Provider import GPROChat
```

The class has the original's surface (``url``, ``api_endpoint``, ``working``,
``supports_stream``, ``supports_message_history``, ``default_model``, ``models``,
``generate_signature``, ``get_model``, ``create_async_generator``) and by default sends
the original's request; underneath are this package's transport (incremental UTF-8,
retries, timeouts, connection reuse) and its typed errors
(:mod:`langchain_gprochat.errors`). See ``docs/migrating.md`` for what differs.

gpt4free is not needed. Where it is installed, ``GPROChat`` is built (on first access)
as a subclass of g4f's ``AsyncGeneratorProvider`` and ``ProviderModelMixin``, so that
it can be handed to g4f's own client (``provider=GPROChat``); without g4f it is the
same class without those bases.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import warnings
from typing import TYPE_CHECKING, Any

from langchain_gprochat._g4f_provider import GPROChat as _Standalone

if TYPE_CHECKING:
    from langchain_gprochat._g4f_provider import GPROChat

__all__ = ["GPROChat", "provider_class"]


@functools.cache
def provider_class() -> type[_Standalone]:
    """``GPROChat`` as this environment has it, built once.

    A subclass of g4f's provider base classes where g4f is installed, else the class
    alone. An installed g4f whose base classes cannot be imported gives the class alone
    and a ``RuntimeWarning`` saying why.
    """
    if importlib.util.find_spec("g4f") is None:
        return _Standalone
    try:
        base = importlib.import_module("g4f.providers.base_provider")
        errors = importlib.import_module("g4f.errors")
        bases: tuple[type, ...] = (base.AsyncGeneratorProvider, base.ProviderModelMixin)
        model_error: type[Exception] = errors.ModelNotFoundError
    except (ImportError, AttributeError) as exc:
        warnings.warn(
            f"g4f is installed, but its provider base classes could not be loaded "
            f"({type(exc).__name__}: {exc}); GPROChat works on its own, but cannot be "
            "handed to g4f's client",
            RuntimeWarning,
            stacklevel=3,
        )
        return _Standalone
    return _g4f_subclass(bases, model_error)


def _g4f_subclass(bases: tuple[type, ...], model_error: type[Exception]) -> type[_Standalone]:
    """``GPROChat`` on top of g4f's ``bases``, its metaclass joined with theirs (ABCMeta).

    The class comes first in the method order, so its attributes and methods
    (``create_async_generator``, ``create_completion``, ``get_model``) are the ones g4f
    calls; g4f's bases add what g4f's client reads besides (``create_function``,
    ``async_create_function``, ``get_parent``, ``needs_auth``, ``params``, ...).
    """
    own = type(_Standalone)
    metas = [own, *(m for m in dict.fromkeys(type(b) for b in bases) if not issubclass(own, m))]
    meta = type("G4FEndpoint", tuple(metas), {}) if len(metas) > 1 else own
    namespace = {
        "__module__": __name__,
        "__qualname__": "GPROChat",
        "__doc__": _Standalone.__doc__,
        "_model_error": model_error,
    }
    cls: type[_Standalone] = meta("GPROChat", (_Standalone, *bases), namespace)
    return cls


def __getattr__(name: str) -> Any:
    if name == "GPROChat":
        return provider_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
