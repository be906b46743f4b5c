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
) -> Callable[[str], Any]:
    """Return a module ``__getattr__`` that imports ``where[name]`` (relative) on first use.

    Args:
        package: the package's ``__name__``.
        namespace: the package's ``globals()``; each name is cached there once imported.
        where: public name -> module relative to the package (``"._session"``).
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    return __getattr__
