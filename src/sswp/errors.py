"""The one exception type that the CLI turns into a single clear line and a non-zero exit."""


class SswpError(Exception):
    """A problem with the user's input (params, data, files) that they can fix.

    The message must say what is wrong and how to fix it, on one line.
    """
