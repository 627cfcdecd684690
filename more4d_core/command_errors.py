"""How the command lines end on a user's mistake: one ``error: ...`` message and exit status 2, no
traceback (``--debug`` or ``MORE4D_DEBUG=1`` shows it); Ctrl-C is exit status 130."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def run_reporting_errors(run: Callable[[], int], *, debug: bool, errors: tuple[type[BaseException], ...]) -> int:
    """``run()``'s exit status; an exception of ``errors`` becomes its message on stderr and status 2."""
    try:
        return run()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except errors as exc:
        if debug or os.environ.get("MORE4D_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)  # the message says what was wrong and what to do
        return 2
