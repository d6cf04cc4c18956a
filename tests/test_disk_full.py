"""A full disk is one line and loses nothing: during the list import, and in the middle of a send.

The state database lives on a small tmpfs of its own, mounted in a private mount namespace
(`unshare --user --map-root-user --mount`, no privileges needed), and is filled up for real: while
the send is running, a file takes every free byte. The send must stop with the journal's one line
(not the lock release's error in its `finally`), exit 1, and the next run, with space again, must
finish the campaign without sending anyone the issue a second time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .helpers import Cli, write_list

pytestmark = pytest.mark.e2e

# Runs inside the namespace: mounts the tmpfs, runs the commands, reports what happened as JSON.
DRIVER = r'''
import json, os, subprocess, sys, time
from pathlib import Path

folder, state_dir, size, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(state_dir)], check=True)
env = {**os.environ, "NEWSLETTER_PATHS_STATE": str(state_dir / "state.db")}
newsletter = [sys.executable, "-m", "newsletter"]

def run(*args):
    done = subprocess.run(newsletter + list(args), cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    return {"code": done.returncode, "stdout": done.stdout, "stderr": done.stderr}

def fill():
    with open(state_dir / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass

report = {}
if mode == "import":
    report["import"] = run("subscribers", "import")
    report["send"] = run("send", "latest", "--yes")
else:
    send = subprocess.Popen(newsletter + ["send", "latest", "--yes"], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and send.poll() is None:
        if sum(1 for _ in (folder / "outbox").glob("*/*.eml")) >= 300:
            break
        time.sleep(0.01)
    fill()  # mid-send: every free byte of the state's file system
    out, err = send.communicate(timeout=300)
    report["first"] = {"code": send.returncode, "stdout": out, "stderr": err}
    report["left"] = sorted(p.name for p in state_dir.iterdir())
    os.unlink(state_dir / "filler")
    report["again"] = run("send", "latest", "--yes")
print(json.dumps(report))
'''


def in_small_filesystem(cli: Cli, size: str, mode: str) -> dict[str, Any]:
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) to mount a small file system in a private namespace (util-linux)")
    state_dir = cli.folder / "state"
    state_dir.mkdir()
    driver = cli.folder.parent / "driver.py"
    driver.write_text(DRIVER)
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a private mount namespace here ({probe.stderr.strip()})")
    namespace = ["unshare", "--user", "--map-root-user", "--mount"]
    result = subprocess.run(
        [*namespace, sys.executable, str(driver), str(cli.folder), str(state_dir), size, mode],
        env={**os.environ, **cli.env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    report["state"] = str(state_dir)
    return report


def errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("newsletter: error:")]


def test_a_full_disk_during_the_list_import_is_one_line(cli: Cli, folder: Path) -> None:
    write_list(folder, 3000, cli)
    report = in_small_filesystem(cli, "600k", "import")
    line = (
        f"newsletter: error: {report['state']}/state.db: the state database failed (database or disk is full); "
        f"free disk space, then run the command again"
    )
    for step in ("import", "send"):
        assert report[step]["code"] == 1 and errors(report[step]["stderr"]) == [line], report[step]["stderr"]
    assert not (folder / "outbox").exists()


def test_a_disk_full_mid_send_names_the_journal_and_the_next_run_finishes_it(cli: Cli, folder: Path) -> None:
    count = 10_000
    write_list(folder, count, cli)
    report = in_small_filesystem(cli, "16m", "send")
    first = report["first"]
    (line,) = errors(first["stderr"])
    assert first["code"] == 1, first["stderr"]
    # The error that stopped the run, not the lock release failing after it.
    assert line.startswith(f"newsletter: error: {report['state']}/state.db.journal-1: cannot "), line
    assert line.endswith("then run the same send again: it resumes where it stopped"), line
    # The outcomes not folded into the database yet stay in the journal (or were folded at the end).
    assert set(report["left"]) <= {"filler", "state.db", "state.db-shm", "state.db-wal", "state.db.journal-1", "state.db.sends"}
    again = report["again"]
    assert again["code"] == 0, again["stderr"]
    summary = re.search(r"^sent ([\d,]+), failed", again["stdout"], re.M)
    before = re.search(r"^\(([\d,]+) were sent by earlier runs", again["stdout"], re.M)
    assert summary and before, again["stdout"]
    sent_now, earlier = (int(found.group(1).replace(",", "")) for found in (summary, before))
    # Everyone once: what the first run recorded (journal included) is not sent again.
    assert sent_now + earlier == count and earlier >= 300, again["stdout"]
    assert f"campaign {latest_key(folder)} finished" in again["stdout"]
    assert len(list((folder / "outbox").glob("*/*.eml"))) == count


def latest_key(folder: Path) -> str:
    return sorted(p.stem for p in (folder / "issues").glob("*.md"))[-1]
