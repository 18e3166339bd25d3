"""Atomic file output: a failed run never leaves a partial artifact behind.

Files are created as any tool creates them — mode 0666 minus the umask — and a file
that is replaced keeps its mode, because a VMM running as another user must be able to
read what vmlayout wrote (a temporary file is 0600 until it is given the right mode).

Output through a symbolic link writes the link's target (the temporary file is made in
the target's directory and renamed onto it), so a link into a shared corpus or an
artifact directory stays a link. Directory writers hold an exclusive lock on the
directory's parent, so concurrent runs into one directory take turns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from vmlayout.errors import VmLayoutError
from vmlayout.inputs import read_bytes, shown

#: Present in an `emit all` directory while its files are being replaced; `inspect`
#: refuses a directory holding it, so an interrupted run is never taken for a set.
INCOMPLETE_MARKER = ".vmlayout-incomplete"
#: Prefix of the staging directory created inside an existing output directory.
STAGING_PREFIX = ".vmlayout-staging."


def current_umask() -> int:
    """The process umask (reading it means setting it; set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _new_file_mode(path: Path, umask: int) -> int:
    """The mode `path` keeps if it is an existing regular file, else 0666 & ~umask."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return 0o666 & ~umask
    if stat.S_ISREG(info.st_mode):
        return stat.S_IMODE(info.st_mode)
    return 0o666 & ~umask


def _output_error(path: Path, error: OSError) -> VmLayoutError:
    return VmLayoutError("output_error", f"{shown(path)}: cannot write: {error.strerror}")


def _write_file(path: Path, payload: bytes, mode: int) -> None:
    """Create `path` (which must not exist) with exactly `mode`, holding `payload`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
    _fill(fd, payload, mode)


def _fill(fd: int, payload: bytes, mode: int) -> None:
    """Write all of `payload` to `fd`, set `mode` (not subject to the umask), flush to
    disk and close: a rename after this never exposes a short file."""
    try:
        os.fchmod(fd, mode)
        _write_all(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, payload: bytes) -> None:
    """`os.write` may write less than asked (a pipe, a signal): loop until all is out."""
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]


def _through_links(path: Path) -> Path:
    """The file a write to `path` must replace: `path` itself, or the final target of
    the symbolic link(s) it is (renaming onto the link would replace the link)."""
    if "\0" in str(path):
        raise VmLayoutError("output_error", f"{shown(path)}: NUL in the file name")
    return Path(os.path.realpath(path)) if os.path.islink(path) else path


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write to a temporary file in the same directory, then rename over `path` (over
    its target if `path` is a symbolic link)."""
    payload = data.encode() if isinstance(data, str) else data
    with open_atomic(path) as stream:
        stream.write(payload)


@contextlib.contextmanager
def open_atomic(path: str | Path) -> Iterator[BinaryIO]:
    """A binary stream whose content replaces `path` (or a symbolic link's target) when
    the block ends without an exception, all at once; on an exception nothing changes.
    For writers that stream (a corpus being blessed), not holding the output in memory.
    A terminal, pipe or `/dev/null` is written into directly."""
    shown_path = Path(path)
    target = _through_links(shown_path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise VmLayoutError(
            "output_error", f"{shown(shown_path)}: directory {shown(directory)} does not exist"
        )
    if target.is_dir():
        raise VmLayoutError("output_error", f"{shown(shown_path)}: is a directory")
    if _is_stream(target):  # renaming over it would replace a device node with a file
        flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
        try:
            with os.fdopen(os.open(target, flags), "wb") as stream:
                yield stream
        except OSError as error:
            raise _output_error(shown_path, error) from None
        return
    mode = _new_file_mode(target, current_umask())
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise _output_error(shown_path, error) from None
    try:
        with os.fdopen(fd, "wb", closefd=False) as stream:
            yield stream
        closing, fd = fd, -1
        _fill(closing, b"", mode)  # mkstemp made it 0600; flushes to disk, closes it
        os.replace(tmp, target)
    except BaseException as error:  # an interrupt too: no temporary file left behind
        if fd >= 0:
            os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _output_error(shown_path, error) from None
        raise


def _is_stream(path: Path) -> bool:
    """Whether `path` is (or links to) a terminal, `/dev/null`, a pipe or other stream
    that is written into; renaming over it would replace a device node with a file.
    Other non-regular files (sockets, block devices) are refused."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return False
    if stat.S_ISCHR(info.st_mode) or stat.S_ISFIFO(info.st_mode):
        return True
    if not stat.S_ISREG(info.st_mode):
        raise VmLayoutError("output_error", f"{shown(path)}: not a regular file, refusing")
    return False


def write_directory_atomic(
    path: str | Path,
    files: Mapping[str, bytes | str],
    *,
    remove: Iterable[str] | Callable[[Path], Iterable[str]] = (),
    commit_file: str | None = None,
) -> tuple[str, ...]:
    """Make directory `path` hold `files`, and no longer hold the names in `remove`
    (files an earlier run wrote that this one does not), leaving other files alone;
    returns the names removed.

    `remove` may be a function of the directory: it is then asked while the directory
    is locked, so what it reads (an earlier set's record) cannot change before the
    write. Concurrent writers take turns on an exclusive lock of the parent directory
    (`directory_lock`): each leaves a complete set, the last one wins, and no run
    deletes another's staging files.

    A new directory is staged next to `path` and renamed into place, all or nothing.
    An existing one is refreshed: everything is staged inside it first; then
    `INCOMPLETE_MARKER` is created, `commit_file` (the record that makes the directory
    a set) removed, the other files renamed in and stale ones removed, `commit_file`
    renamed in last and the marker removed. A run interrupted anywhere leaves either
    the old set, the new set, or a directory marked incomplete — never a mixture that
    looks complete."""
    shown_path = Path(path)
    if "\0" in str(path):
        raise VmLayoutError("output_error", f"{shown(path)}: NUL in the directory name")
    path = _through_links(shown_path)
    if path.resolve().parent == path.resolve():
        raise VmLayoutError(
            "output_error", f"{shown(shown_path)}: a filesystem root is not an output directory"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise VmLayoutError(
            "output_error", f"{shown(shown_path)}: directory {shown(parent)} does not exist"
        )
    umask = current_umask()
    payloads = {n: d.encode() if isinstance(d, str) else d for n, d in files.items()}
    with directory_lock(parent):
        if path.exists() and not path.is_dir():
            raise VmLayoutError(
                "output_error", f"{shown(shown_path)}: exists and is not a directory"
            )
        stale = set(remove(path) if callable(remove) else remove) - set(payloads)
        if not path.exists():
            _create_directory(path, parent, payloads, umask)
            return ()
        try:
            _refresh_directory(path, payloads, stale, commit_file, umask)
        except OSError as error:
            raise _output_error(shown_path, error) from None
    return tuple(sorted(stale))


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """An exclusive `flock` on `directory` itself for the block: no lock file is left
    behind, and the lock goes with the process however it ends. Where locks are not
    supported (or the directory cannot be opened for reading) the block runs unlocked,
    as before locking existed."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _create_directory(path: Path, parent: Path, payloads: Mapping[str, bytes], umask: int) -> None:
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=parent))
    except OSError as error:
        raise _output_error(path, error) from None
    try:
        for name, data in payloads.items():
            _write_file(staging / name, data, 0o666 & ~umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp made it 0700
        os.replace(staging, path)
    except OSError as error:
        raise _output_error(path, error) from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _refresh_directory(
    path: Path,
    payloads: Mapping[str, bytes],
    stale: set[str],
    commit_file: str | None,
    umask: int,
) -> None:
    for leftover in path.glob(f"{STAGING_PREFIX}*"):  # from a run that was killed
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=path))
    try:
        for name, data in payloads.items():
            _write_file(staging / name, data, _new_file_mode(path / name, umask))
        marker = path / INCOMPLETE_MARKER
        # The marker lists every name this refresh may leave behind, so a rerun after
        # an interruption (when the record is already gone) still knows them as ours.
        names = sorted({*pending_names(path), *payloads, *stale})
        fresh = Path(f"{marker}.new")
        fresh.unlink(missing_ok=True)  # left by a run killed right here
        _write_file(fresh, "".join(f"{n}\n" for n in names).encode(), 0o666 & ~umask)
        os.replace(fresh, marker)
        if commit_file is not None:
            _remove_file(path / commit_file)
        for name in sorted(payloads):
            if name != commit_file:
                os.replace(staging / name, path / name)
        for name in sorted(stale):
            _remove_file(path / name)
        if commit_file is not None and commit_file in payloads:
            os.replace(staging / commit_file, path / commit_file)
        _sync_directory(path)
        os.unlink(marker)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def pending_names(path: Path) -> tuple[str, ...]:
    """The names an interrupted refresh of `path` was writing or removing (from its
    `INCOMPLETE_MARKER`), or none; unreadable markers count as none."""
    marker = path / INCOMPLETE_MARKER
    if not os.path.lexists(marker):
        return ()
    try:
        text = read_bytes(marker, "output_error").decode("utf-8", "replace")
    except VmLayoutError:
        return ()
    return tuple(name for name in text.split("\n") if name)


def _remove_file(path: Path) -> None:
    """Remove a file (or a symlink) we wrote; a directory of that name is not ours."""
    try:
        if not path.is_dir() or path.is_symlink():
            path.unlink()
    except FileNotFoundError:
        pass


def _sync_directory(path: Path) -> None:
    """Make the renames durable before the marker goes (best effort)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
