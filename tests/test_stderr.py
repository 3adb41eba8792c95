"""``atlas_ray._stderr``: native libraries' notices held back and dropped, every other line passed on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from atlas_ray._stderr import held_stderr, is_tensorflow_notice

ROOT = Path(__file__).resolve().parents[1]
NOTICES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796661169.297007   15776 port.cc:153] oneDNN custom operations are on. You may see ...",
    "I0000 00:00:1796661169.298264   15776 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
    "GPU will not be used.",
    "E0000 00:00:1796661178.337024   15776 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
]


PROGRAM = """
import os, sys
from atlas_ray._stderr import held_stderr
notices = {notices!r}
with held_stderr():
    os.write(2, (notices[0] + "\\nfirst real line\\n" + "\\n".join(notices[1:]) + "\\n").encode())
    print("second real line", file=sys.stderr)
    os.write(2, b"E0000 00:00:1.0 1 gpu.cc:1] CUDA_ERROR_OUT_OF_MEMORY: out of memory\\n")
"""


def test_tensorflow_notices_are_dropped_and_everything_else_passed_on_in_order() -> None:
    """In a process of its own, as a command uses it: descriptor 2 and Python's ``sys.stderr`` both."""
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(notices=NOTICES)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "first real line",
        "second real line",
        "E0000 00:00:1.0 1 gpu.cc:1] CUDA_ERROR_OUT_OF_MEMORY: out of memory",
    ]
    assert all(is_tensorflow_notice(n) for n in NOTICES) and not is_tensorflow_notice("first real line")


def test_a_failing_block_passes_on_its_lines_unless_told_not_to(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError), held_stderr():
        os.write(2, b"why it failed\n")
        raise RuntimeError("boom")
    assert capfd.readouterr().err == "why it failed\n"
    with pytest.raises(RuntimeError), held_stderr(lambda _line: False, pass_on_failure=False):
        os.write(2, b"a refused token, logged by a C++ core\n")
        raise RuntimeError("refused")
    assert capfd.readouterr().err == ""
