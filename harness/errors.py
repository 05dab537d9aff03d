"""The one exception type that reaches users as a single line and exit code 2."""


class HarnessError(Exception):
    """Bad input or an unusable environment: the message says what is wrong and what to do."""


def first_line(exc: BaseException) -> str:
    """An error in one line (psycopg's and Docker's run over several), for one-line reports."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
