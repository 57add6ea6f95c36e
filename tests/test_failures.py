"""jobs/failures.py: a failed step's first line names the step, the table and the root cause. No Spark
here: a Java exception is stood in for by an object answering getCause, equals and toString as
Py4J's proxies do."""

from __future__ import annotations

import pytest

from jobs.failures import StepFailed, failing_clearly, root_cause


class FakeThrowable:
    def __init__(self, text: str, cause: FakeThrowable | None = None):
        self.text, self.cause = text, cause

    def getCause(self):
        return self.cause

    def equals(self, other) -> bool:
        return other is self

    def toString(self) -> str:
        return self.text


class FakePy4JJavaError(OSError):
    """Caught like Spark's errors (OSError is among what failing_clearly wraps), holding a Java chain."""

    def __init__(self, java_exception: FakeThrowable):
        super().__init__("An error occurred while calling o123.save.\n" + "\tat a.b.C.d(C.java:1)\n" * 150)
        self.java_exception = java_exception


def disk_full() -> FakePy4JJavaError:
    return FakePy4JJavaError(
        FakeThrowable(
            "org.apache.spark.SparkException: Job aborted due to stage failure: ...\n\tat ...",
            FakeThrowable(
                "org.apache.spark.SparkException: [TASK_WRITE_FAILED] Task failed while writing rows",
                FakeThrowable("java.io.IOException: No space left on device\n\tat java.io.FileOutputStream.writeBytes"),
            ),
        )
    )


def test_the_root_cause_of_a_spark_error_is_the_first_line_of_its_deepest_java_cause():
    assert root_cause(disk_full()) == "java.io.IOException: No space left on device"


def test_the_root_cause_of_a_python_error_is_the_innermost_of_its_chain():
    try:
        try:
            raise FileNotFoundError("no such file: x")
        except FileNotFoundError as inner:
            raise RuntimeError("reading failed\nmore") from inner
    except RuntimeError as error:
        assert root_cause(error) == "FileNotFoundError: no such file: x"


def test_a_python_workers_error_is_named_by_its_tracebacks_last_line():
    error = FakePy4JJavaError(
        FakeThrowable(
            "org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n"
            '  File "x.py", line 1, in f\nZeroDivisionError: division by zero\n'
        )
    )
    assert root_cause(error) == "org.apache.spark.api.python.PythonException: ZeroDivisionError: division by zero"


def test_a_failed_write_names_step_table_cause_and_what_readers_keep_on_one_line_with_the_original_chained():
    original = disk_full()
    with pytest.raises(StepFailed) as failure, failing_clearly("publish", "mart orders", "/w/gold/orders", lambda: "gold.orders keeps version 3"):
        raise original
    assert str(failure.value) == (
        "publish of mart orders failed: java.io.IOException: No space left on device (writing /w/gold/orders); "
        "gold.orders keeps version 3"
    )
    assert failure.value.__cause__ is original


def test_the_projects_own_refusals_pass_through_unchanged():
    with pytest.raises(ValueError, match="^refused$"), failing_clearly("build", "mart orders"):
        raise ValueError("refused")


def test_a_state_that_fails_too_is_left_out():
    def state() -> str:
        raise OSError("gone")

    with pytest.raises(StepFailed, match=r"^build of silver failed: OSError: disk$"), failing_clearly("build", "silver", state=state):
        raise OSError("disk")
