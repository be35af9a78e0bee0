"""One run per stage, seed and folder: an exclusive flock beside the run's checkpoint folder.

Two runs of the same stage run would share a checkpoint, live plots and outputs; the second
stops at once and names the process that holds the lock. The kernel drops the lock when
its holder dies, so a killed run never blocks the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path
from types import TracebackType

from sswp.errors import SswpError


class RunLock:
    """Hold `path` locked while `what` (the stage's command) runs; removed on release."""

    def __init__(self, path: Path, what: str):
        self.path, self.what = Path(path), what
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 4096).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise SswpError(
                    f"`{self.what}` is already running in this folder ({holder}, holding "
                    f"{self.path}); wait for it to finish or stop it, then rerun"
                ) from None
            # The holder before us may have removed the file after we opened it: lock anew.
            if _same_file(fd, self.path):
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        self.fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)  # still locked: no one else can hold this file
        os.close(self.fd)
        self.fd = None
        with contextlib.suppress(OSError):  # other runs' checkpoints or locks are still there
            self.path.parent.rmdir()


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
