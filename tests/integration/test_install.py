"""scripts/install-systemd.sh into a scratch root: a wheel in a fresh venv that runs as a non-root user,
without the checkout it came from, and without the checkout's secrets, data or venv."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import free_port

REPO = Path(__file__).parents[2]
INSTALLER = REPO / "scripts" / "install-systemd.sh"
SECRET = b"QC_TEST_SECRET_NEVER_INSTALLED"
IGNORED = shutil.ignore_patterns(".git", ".venv", "var", ".env", "build", "*.egg-info", "__pycache__", ".*_cache",
                                 ".hypothesis")


def copy_checkout(dst: Path) -> None:
    """The repository's files as a fresh clone has them (tracked, plus new files not ignored yet)."""
    listing = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, check=False) if shutil.which("git") else None
    if listing is None or listing.returncode != 0:
        shutil.copytree(REPO, dst, ignore=IGNORED)
        return
    for name in listing.stdout.decode().split("\0"):
        if name and (REPO / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dst / name)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """Not pytest's tmp_path: that sits under a 0700 directory the service user cannot traverse."""
    path = Path(tempfile.mkdtemp(prefix="qc-install-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def service_user() -> Iterator[str]:
    """`nobody` where it exists, else a throwaway system user removed afterwards."""
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        name = "qc-install-test"
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        name], check=True)
        yield name
        subprocess.run(["userdel", name], check=True)
        return
    yield "nobody"


def as_user(user: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``argv`` as ``user``, with a plain environment (nothing of this venv or checkout leaks in)."""
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run([runuser, "-u", user, "--", *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def references(root: Path, needles: list[bytes]) -> list[str]:
    """Files under ``root`` whose bytes contain one of ``needles`` (symlinks are not followed)."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path}: {needle.decode()}" for needle in needles if needle in data]
    return found


def test_usage_errors_exit_2_with_one_line(scratch: Path) -> None:
    for args, words in ((["--bogus"], "unknown option --bogus"), (["--root", "relative/dir"], "--root"),
                        (["--root", str(scratch / "r"), "--user", "Bad User"], "--user"),
                        (["--root", str(scratch / "r"), "frobnicate"], "VERB: 'frobnicate'")):
        run = subprocess.run(["bash", str(INSTALLER), *args], capture_output=True, text=True, timeout=60, check=False)
        assert run.returncode == 2, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and words in run.stderr, run.stderr
    shown = subprocess.run(["bash", str(INSTALLER), "--help"], capture_output=True, text=True, timeout=60, check=True)
    assert "--root DIR" in shown.stdout and "--user NAME" in shown.stdout


@pytest.mark.slow
@pytest.mark.timeout(1800)  # builds a venv and installs numpy, pandas, scikit-learn… (pip's cache makes reruns quick)
def test_installed_qc_runs_as_a_service_user_without_the_checkout(scratch: Path, service_user: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the installer gives files to another user, and the test runs qc as that user")
    checkout, root = scratch / "checkout", scratch / "root"
    copy_checkout(checkout)
    (checkout / ".env").write_bytes(b"QC_ALPHA_VANTAGE_API_KEY=" + SECRET + b"\n")  # what must never travel
    (checkout / "var" / "redis").mkdir(parents=True)
    (checkout / "var" / "redis" / "appendonly.aof").write_bytes(SECRET)
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / ".venv" / "bin" / "python").write_bytes(SECRET)

    install = subprocess.run(["bash", str(checkout / "scripts" / "install-systemd.sh"), "--root", str(root),
                              "--user", service_user, "stream", "analytics"],
                             cwd=scratch, capture_output=True, text=True, timeout=1700, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    assert "not enabling qc@stream" in install.stdout  # a --root install leaves systemd alone
    shutil.rmtree(checkout)  # the installation must stand on its own

    prefix, data = root / "opt" / "qc", root / "var" / "lib" / "qc"
    venv = prefix / "venv"
    assert venv.is_symlink() and (venv / "bin" / "qc").is_file()
    version = as_user(service_user, str(venv / "bin" / "qc"), "--version", cwd=data)
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("qc, version ")

    probe = ("import qc, numpy, pandas, sklearn, ib_async, exchange_calendars, subprocess\n"
             "from qc.runtime.store import redis_server_binary\n"
             "print(qc.__file__, flush=True)\n"
             "subprocess.run([str(redis_server_binary()), '--version'], check=True)\n")
    imports = as_user(service_user, str(venv / "bin" / "python"), "-c", probe, cwd=data)
    assert imports.returncode == 0, imports.stderr
    installed_at = imports.stdout.splitlines()[0]
    assert installed_at.startswith(f"{prefix}/") and "/site-packages/qc/" in installed_at  # installed, not editable
    assert "Redis server" in imports.stdout
    status = as_user(service_user, str(venv / "bin" / "qc"), "--redis-url", f"redis://127.0.0.1:{free_port()}/0",
                     "status", cwd=data)
    assert status.returncode == 1 and status.stderr.startswith("Error: Redis unreachable"), status.stderr

    assert references(root, [str(checkout).encode(), str(REPO).encode(), SECRET]) == []
    assert list(root.rglob(".env")) == []
    assert not any((prefix / name).exists() for name in (".venv", "var", ".git", "tests", "qc"))
    assert data.stat().st_uid == pwd.getpwnam(service_user).pw_uid
    assert stat.S_IMODE((root / "etc" / "qc" / "qc.env").stat().st_mode) == 0o640
    assert f"QC_DATA_DIR={data}\n" in (root / "etc" / "qc" / "qc.env").read_text()
    unit = (root / "etc" / "systemd" / "system" / "qc@.service").read_text()
    assert f"ExecStart={venv}/bin/qc %i $QC_ARGS_%i" in unit
    assert f"User={service_user}\n" in unit and f"WorkingDirectory={data}\n" in unit
    assert f"ReadWritePaths={data}\n" in unit and "/.venv/" not in unit
    assert (root / "etc" / "systemd" / "system" / "qc.target").is_file()
    once = prefix / "scripts" / "qc-once.sh"  # the cron batch, runnable from the installed tree
    assert os.access(once, os.X_OK) and (prefix / "scripts" / "crontab.example").is_file()
    assert (data / "logs").stat().st_uid == pwd.getpwnam(service_user).pw_uid
