"""Opening a checkpoint for reading and replacing one atomically: what both file formats share."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from typing import IO


class CheckpointError(ValueError):
    """The file is not a readable checkpoint: truncated, corrupted, crafted, or holding pickled objects."""


def open_checkpoint(path: str) -> IO[bytes]:
    """Open `path` for reading if it is a regular file (a symlink to one is followed).

    A missing file raises FileNotFoundError and an unreadable one PermissionError, as `open` does; any other
    path (a directory, a FIFO, a device, a symlink loop) raises CheckpointError. O_NONBLOCK keeps a FIFO from
    blocking the open; it changes nothing for a regular file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except (FileNotFoundError, PermissionError):
        raise
    except OSError as e:
        raise CheckpointError(f"load: {path} cannot be opened as a checkpoint file: {e.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a FIFO, socket or device)"
        raise CheckpointError(f"load: {path} is {kind}, not a checkpoint file")
    return os.fdopen(fd, "rb")


def write_atomically(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write` on a new file beside `path`, flush it to disk, then rename it over `path`.

    Readers see the old file or the complete new one, never a partial one; if anything fails (including
    `write` itself) the temporary file is removed and the old file stays as it was.
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = tempfile.NamedTemporaryFile(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                      delete=False)
    try:
        with tmp:
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())  # the data must be on disk before the rename makes it the checkpoint
        os.chmod(tmp.name, 0o666 & ~_umask())  # temporary files are private (0600); a saved file should not be
        os.replace(tmp.name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp.name)
        raise
    _fsync_directory(directory)


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read the umask is to set it
    os.umask(mask)
    return mask


def _fsync_directory(directory: str) -> None:
    """Make the rename durable; skipped where directories cannot be opened or synced (e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
