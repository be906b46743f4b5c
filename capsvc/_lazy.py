"""Lazy re-exports for package ``__init__`` modules (PEP 562).

A package lists which private module defines each public name; the module is imported the first
time the name is looked up. ``import capsvc`` therefore stays cheap (the command line starts
faster) and loads no capture library, aiohttp or ctypes binding until they are used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, namespace: dict[str, Any], where: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return a module's ``__getattr__`` and ``__dir__`` for names imported on first use.

    Args:
        package: the package's ``__name__``.
        namespace: the package's ``globals()``; each name is cached there once imported.
        where: public name -> module relative to the package (``"._session"``).

    Returns:
        ``(__getattr__, __dir__)``: the first imports ``where[name]`` and caches the value; the
        second lists the public names and the module's dunders (``__version__``, ``__all__``),
        so ``dir()`` and tab completion show the API before anything is imported.
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*where, *(n for n in namespace if n.startswith("__"))})

    return __getattr__, __dir__
