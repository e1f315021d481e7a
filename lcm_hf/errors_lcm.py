"""The one exception type for a user's mistake: bad input, a wrong flag, a file that is not what it should be.

Console entries (``lcm_hf.console.run_main``) print these as one line ``error: ...`` (exit status 2); every other
exception is a bug or an environment failure and keeps its traceback. Both classes subclass the built-in types the
API documents (``ValueError``, ``TypeError``), so ``except ValueError`` keeps working.

Part of the model core shipped as Hub remote code (standard library only).
"""

from __future__ import annotations


class LcmInputError(ValueError):
    """Bad input, named: the field, what was expected and what was given."""


class LcmInputTypeError(LcmInputError, TypeError):
    """Input of the wrong type (a ``TypeError`` and an :class:`LcmInputError`)."""


__all__ = ["LcmInputError", "LcmInputTypeError"]
