"""The one exception type that reaches users as a single line and exit code 2."""


class HarnessError(Exception):
    """Bad input or an unusable environment: the message says what is wrong and what to do."""
