"""One error type for bad input, so every command can report it as one clear line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

__all__ = ["InputError", "cli_errors"]


class InputError(ValueError):
    """Bad input from a user: a file, row, key or value that cannot be used.

    The message is one line that names the offending file, row or key and,
    where possible, says what to do instead. Commands print it and exit with
    status 2; nothing is written before it is raised.
    """


F = TypeVar("F", bound=Callable[..., int | None])


def cli_errors(main: F) -> F:
    """Decorate a command's ``main``: an :class:`InputError` becomes one line on stderr and exit 2.

    Parameters
    ----------
    main : callable
        The command's ``main(argv) -> int``.

    Returns
    -------
    callable
        ``main`` wrapped: :class:`InputError` -> ``error: <message>`` on stderr and
        ``SystemExit(2)``; Ctrl-C -> ``interrupted`` and ``SystemExit(130)``.
    """

    @wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except InputError as error:
            message = " ".join(str(error).split("\n"))
            print(f"error: {message}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper  # type: ignore[return-value]
