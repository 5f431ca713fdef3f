"""Worker log files under the data dir: written, rotated, and masked like stderr."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qc.core import logs

from .conftest import RedisServer

SECRET = "s3cr3t-key/with?odd=chars"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            handler.close()
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_the_file_rotates_and_masks_secrets(tmp_path: Path, restore_logging: None) -> None:
    logs.setup("INFO", "plain", [SECRET])
    path = logs.add_file(tmp_path / "logs" / "probe.log", max_bytes=400, backups=2)
    assert path is not None
    probe = logging.getLogger("qc.probe")
    for i in range(40):
        probe.info("line %d with the key %s inside", i, SECRET)
    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert files == ["probe.log", "probe.log.1", "probe.log.2"]  # rotated, two backups kept
    text = "".join(p.read_text() for p in (tmp_path / "logs").iterdir())
    assert "line 39 with the key *** inside" in text and SECRET not in text


def test_an_unwritable_log_dir_is_a_warning_not_a_failure(tmp_path: Path, restore_logging: None,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup("INFO", "plain")
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the directory should be")
    assert logs.add_file(blocker / "probe.log") is None
    assert "no log file" in capsys.readouterr().err


def test_a_worker_writes_its_file_under_the_data_dir(redis_server: RedisServer, tmp_path: Path) -> None:
    env = {**os.environ, "QC_REDIS_URL": redis_server.url, "QC_DATA_DIR": str(tmp_path / "data")}
    got = subprocess.run([sys.executable, "-m", "qc", "analytics", "SPY", "--once", "--task", "imbalance"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    log_file = tmp_path / "data" / "logs" / "analytics-once.log"
    assert log_file.is_file(), got.stderr
    assert "analytics started" in log_file.read_text()
    assert not (tmp_path / "data" / "logs" / "analytics.log").exists()  # the live worker's file is not touched
