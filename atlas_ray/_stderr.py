"""What native libraries write to standard error (file descriptor 2), held back and passed on filtered.

TensorFlow 2.21's C++ core writes start-up notices to file descriptor 2 before its logging is set up,
whatever ``TF_CPP_MIN_LOG_LEVEL`` says ("All log messages before absl::InitializeLog() ...",
oneDNN, "Could not find cuda drivers", "failed call to cuInit" on a machine without a GPU, the CPU
instruction notice), and Ray's C++ core logs a refused token there too. A command that does such work
in its own process (``finalize`` loads and runs models) wraps it in ``held_stderr``: everything written
to descriptor 2 meanwhile (Python's own ``sys.stderr`` included) goes to a temporary file and is passed
on at the end, without the lines ``drop`` says are noise. ``TENSORFLOW_NOTICES`` names TensorFlow's
known start-up notices, and nothing else: any other line, a real CUDA error included, is passed on.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator

__all__ = ["TENSORFLOW_NOTICES", "held_stderr", "is_tensorflow_notice"]

TENSORFLOW_NOTICES = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "Could not find cuda drivers on your machine",
    "failed call to cuInit",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions:",
    "Unable to register cuDNN factory",
    "Unable to register cuBLAS factory",
    "Unable to register cuFFT factory",
    "computation placer already registered",
)
_NOTICE = re.compile("|".join(re.escape(text) for text in TENSORFLOW_NOTICES))


def is_tensorflow_notice(line: str) -> bool:
    """Whether ``line`` is one of TensorFlow's start-up notices (``TENSORFLOW_NOTICES``)."""
    return _NOTICE.search(line) is not None


@contextlib.contextmanager
def held_stderr(
    drop: Callable[[str], bool] = is_tensorflow_notice, *, pass_on_failure: bool = True
) -> Iterator[None]:
    """Hold back what is written to descriptor 2 during the block; then pass on the lines ``drop``
    does not refuse. ``pass_on_failure=False``: a block that raises passes nothing on (the caller
    says what went wrong in its own words)."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as held:
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if pass_on_failure or not failed:
                held.seek(0)
                text = held.read().decode("utf-8", errors="replace")
                kept = "".join(line for line in text.splitlines(keepends=True) if not drop(line))
                if kept:
                    os.write(2, kept.encode("utf-8"))
