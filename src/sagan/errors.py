"""The one exception type the command line turns into a one-line message."""

from __future__ import annotations


class SaganError(Exception):
    """A problem with the user's input or environment, worded as one line that names the fix.

    The command line prints ``sagan: error: <message>`` and exits with status 2 instead of a
    traceback. Library callers can catch it like any other exception.
    """
