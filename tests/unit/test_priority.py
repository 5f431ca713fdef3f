"""Batch workers lower their own CPU priority by QC_BATCH_NICE (in a child process: niceness is one-way)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CODE = "import os; from qc.runtime.priority import step_back; before = os.nice(0); print(before, step_back('t', {n}))"


@pytest.mark.parametrize("n", [0, 3])
def test_step_back_adds_the_setting_to_the_inherited_niceness(n: int) -> None:
    out = subprocess.run([sys.executable, "-c", CODE.format(n=n)], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    before, after = map(int, out.stdout.split())
    assert after == min(19, before + n)

