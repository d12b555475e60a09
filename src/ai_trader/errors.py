"""The one exception type that means "the user gave us something wrong".

The CLI prints it as a single line and exits non-zero; anything else is a bug
and keeps its traceback.
"""


class UserError(Exception):
    """A problem with input, configuration or environment that the user can fix."""
