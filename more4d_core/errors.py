"""Exception types shared by the whole library.

Every error a user can trigger says *what* was wrong and *what to do*. The classes derive from the
builtin exception a caller would naturally catch (``ValueError``, ``TypeError``,
``FileExistsError``), so plain ``except ValueError`` keeps working.
"""

from __future__ import annotations


class More4DError(Exception):
    """Base class of every error raised on purpose by ``more4d_core``."""


class InputError(More4DError, ValueError):
    """A value (tensor shape, number, option) is not acceptable. The message says how to fix it."""


class WrongTypeError(More4DError, TypeError):
    """An object of the wrong type reached a function or node (e.g. a tensor instead of a Scene4D)."""


class UnsafePathError(More4DError, ValueError):
    """A write would land outside the folder it is meant for."""


class OutputExistsError(More4DError, FileExistsError):
    """A write would replace an existing file or folder and overwriting was not asked for."""


class FormatError(More4DError, ValueError):
    """A file is not in the expected format or has an unsupported version."""


def expect_type(value: object, cls: type, what: str) -> None:
    """Raise :class:`WrongTypeError` when ``value`` is not an instance of ``cls``."""
    if not isinstance(value, cls):
        raise WrongTypeError(
            f"{what} must be a {cls.__module__}.{cls.__qualname__}, got {type(value).__name__}. "
            f"Connect the output of a node that produces a {cls.__name__}."
        )
