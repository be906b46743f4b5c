"""The service's configuration errors (kept apart so every module can raise them)."""

from __future__ import annotations

from .._errors import CapsvcError

__all__ = ["ConfigError", "PathOutsideError"]


class ConfigError(CapsvcError, ValueError):
    """A configuration or session spec is invalid.

    Attributes:
        origin: the config file, or ``"request"`` for a spec sent over the API.
        key: the dotted key that is wrong (``session[0].source.type``), ``""`` for the whole.
        problem: what is wrong and what is expected.
    """

    def __init__(self, origin: str, key: str, problem: str) -> None:
        self.origin = origin
        self.key = key
        self.problem = problem
        where = f"{origin}: {key}" if key else origin
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, str, str]]:
        """Pickle by the three parts (errors cross the pipe from worker processes)."""
        return (type(self), (self.origin, self.key, self.problem))


class PathOutsideError(ConfigError):
    """A path would read or write outside the configured output directory."""
