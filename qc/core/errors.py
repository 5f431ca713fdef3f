"""Errors domain code raises; the CLI edge turns them into one line and an exit code.

``QcError`` is a runtime failure (exit 1); ``ConfigError`` is bad input from the operator (exit 2).
Both carry a hint saying what to do, so no message ends at "failed".
"""

from __future__ import annotations


class QcError(Exception):
    """A runtime failure with a one-line message and a hint naming the fix."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(QcError):
    """A setting, flag or config-file key is wrong; names the field and the fix."""

    exit_code = 2

    def __init__(self, field: str, problem: str, hint: str | None = None) -> None:
        super().__init__(f"{field}: {problem}", hint)
        self.field = field
        self.problem = problem

    def renamed(self, field: str) -> ConfigError:
        """The same problem under another name (``--redis-url`` when the value came from the flag)."""
        return ConfigError(field, self.problem, self.hint)


class StoreUnavailable(QcError):
    """Redis cannot be reached at the configured address."""


class DataError(QcError):
    """Input data (a provider payload, a chain, a bar) is malformed or missing."""
