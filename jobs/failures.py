"""A failed step says on its first line what failed, why, and what readers still see:

    publish of mart orders failed: java.io.IOException: No space left on device (writing …/gold/orders);
    gold.orders keeps version 3

Spark reports a failed write as a Py4J error whose text is the JVM's whole trace, the cause ("No space
left on device") a hundred lines down, naming neither the step nor the table. `failing_clearly` wraps a
step's writes: any exception becomes a `StepFailed` whose message starts with the step, the table and the
root cause (the deepest Java cause of a Spark error, else of Python's chain), with the original chained
(`raise … from`), so that the whole trace is still in the log below it.

Only what the JVM, Spark or the operating system raise is wrapped: the project's own refusals
(ValidationFailed, PublicationRefused, ConfigError…) already say what they mean and keep their type.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from py4j.protocol import Py4JError
from pyspark.errors import PySparkException

# Errors from the JVM (Py4JJavaError, or the JVM gone), from PySpark (AnalysisException…), from the OS.
_WRAPPED = (Py4JError, PySparkException, OSError)
# Cause chains are short; a bound keeps a cyclic one (a cause that is its own cause) from looping.
_MAX_CAUSES = 32


class StepFailed(RuntimeError):
    """A pipeline step failed; the message's first line names the step, the table and the root cause."""


def root_cause(error: BaseException) -> str:
    """The first line of the innermost cause of `error`: for an error from Spark's JVM (Py4JJavaError,
    or PySpark's captured exceptions) the deepest cause of the Java exception, e.g.
    "java.io.IOException: No space left on device"; else the innermost of Python's chain."""
    java = _java_root_cause(error)
    if java:
        return java
    innermost, seen = error, {id(error)}
    while (inner := innermost.__cause__ or innermost.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        innermost = inner
    return f"{type(innermost).__name__}: {_first_line(str(innermost))}"


def _java_root_cause(error: BaseException) -> str | None:
    """Walk the Java cause chain of a Spark error; None when there is none or the JVM cannot tell (gone,
    or a Spark Connect session, whose errors hold no Java object)."""
    throwable = getattr(error, "java_exception", None) or getattr(error, "_origin", None)
    if throwable is None:
        return None
    try:
        for _ in range(_MAX_CAUSES):
            cause = throwable.getCause()
            if cause is None or cause.equals(throwable):
                break
            throwable = cause
        return _summary(str(throwable.toString()))
    except Exception:  # noqa: BLE001 - the JVM may be the thing that failed; fall back to Python's view
        return None


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else "(no message)"


def _summary(text: str) -> str:
    """A Java exception's first line; for a Python worker's error (a PythonException holding a Python
    traceback), the traceback's last line, which is the error."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if lines and lines[0].rstrip().endswith("Traceback (most recent call last):"):
        return f"{lines[0].split(':', 1)[0]}: {lines[-1].strip()}"
    return _first_line(text)


@contextmanager
def failing_clearly(
    step: str, subject: str, target: str | None = None, state: Callable[[], str] | None = None
) -> Iterator[None]:
    """Turn a failure of Spark, the JVM or the OS inside into `StepFailed("<step> of <subject> failed:
    <root cause> (writing <target>); <state()>")` (one line), chained to the original. `state` says what
    readers see after the failure (e.g. the published table's version); it is asked only then, and
    left out if it fails too."""
    try:
        yield
    except _WRAPPED as error:
        message = f"{step} of {subject} failed: {root_cause(error)}"
        if target:
            message += f" (writing {target})"
        if state is not None:
            try:
                message += f"; {state()}"
            except Exception:  # noqa: BLE001 - the original failure is the one to report
                pass
        raise StepFailed(message) from error
