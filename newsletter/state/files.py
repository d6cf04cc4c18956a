"""Files that hold personal data (the state database, outbox and build messages, send journals, exports).

They are created readable by their owner only, 0600, and the folders made for them 0700, whatever
the umask: a 022 umask would leave addresses and names readable by every user of the machine. A
file that already exists keeps the mode its owner gave it (a state database shared with `serve`'s
user through a group, say), except the files we regenerate whole (a message, a build output).
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path) -> Path:
    """`mkdir -p path`, each folder it creates 0700 (folders that exist keep their mode)."""
    missing = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, PRIVATE_DIR)
        except FileExistsError:  # made by another process meanwhile
            continue
        os.chmod(folder, PRIVATE_DIR)  # mkdir's mode is masked by the umask; this one is exact
    if not path.is_dir():
        raise NotADirectoryError(20, "Not a directory", str(path))
    return path


def open_private(path: Path, flags: int) -> int:
    """A file descriptor for `path` (created if missing) whose mode is 0600 from now on."""
    fd = os.open(path, flags | os.O_CREAT, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private(path: Path, data: bytes) -> None:
    """Write `data` as the whole content of `path`, mode 0600."""
    fd = open_private(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def create_private(path: Path) -> None:
    """Make `path` an empty 0600 file unless it exists (then its mode stays as its owner set it).

    SQLite gives its -wal and -shm files the database file's mode, so a database created empty here
    keeps all three private.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)


def mode_to_keep(path: Path) -> int:
    """The mode of the file `path` replaces: its own when it exists (an export over the list), else 0600."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return PRIVATE_FILE
