"""The one error type for mistakes a user can fix, so the CLI can tell them from its own failures.

A `UserError` (a bad flag, config, path or input file) ends a command with one line and exit
code 2; any other exception is a failure inside the tool: exit 1, traceback kept in a file.
"""


class UserError(ValueError):
    """A mistake the user can fix; the message names the file, flag or key at fault."""
