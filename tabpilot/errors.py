"""Errors a user can cause: caught at the edge and printed as one line, never a traceback."""


class UserError(Exception):
    """A problem with the user's input or configuration; the message names the fix."""
