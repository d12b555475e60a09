"""The one exception type that means "the user gave us something wrong".

The CLI prints it as a single line and exits non-zero; anything else is a bug
and keeps its traceback.
"""


class UserError(Exception):
    """A problem with input, configuration or environment that the user can fix."""

    exit_code = 2


class RunFailed(UserError):
    """The input was fine but the run could not finish (a model API kept failing, say)."""

    exit_code = 1
