"""What the command line shows of other libraries' warnings.

Deprecation notices of torch, transformers and the rest speak to finesift's developers, who meet them
as errors in the test suite (pyproject's ``filterwarnings = error``), not to the people running a
command. A normal run hides them; ``-v`` routes every warning to the log instead.
"""

from __future__ import annotations

import logging
import sys
import warnings

LIBRARY_NOTICES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def quiet_library_warnings(argv: list[str] | None = None) -> None:
    """Hide libraries' deprecation notices unless the command line asks for verbose output."""
    args = sys.argv[1:] if argv is None else argv
    if any(a == "--verbose" or (a.startswith("-v") and set(a[1:]) == {"v"}) for a in args):
        logging.captureWarnings(True)
        return
    for category in LIBRARY_NOTICES:
        warnings.filterwarnings("ignore", category=category)
