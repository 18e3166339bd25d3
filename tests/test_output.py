"""`vmlayout.output`: atomic writes with the modes any tool gives (0666/0777 minus the
umask, an existing file's mode kept), and directory refreshes that remove exactly the
files the previous run wrote and never leave a mixture that looks complete."""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from vmlayout.errors import VmLayoutError
from vmlayout.output import INCOMPLETE_MARKER, write_atomic, write_directory_atomic


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_is_0666_minus_the_umask(tmp_path: Path, umask_022: None) -> None:
    write_atomic(tmp_path / "a.bin", b"x")
    assert _mode(tmp_path / "a.bin") == 0o644
    os.umask(0o077)
    write_atomic(tmp_path / "b.bin", b"x")
    assert _mode(tmp_path / "b.bin") == 0o600


def test_replacing_a_file_keeps_its_mode(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    for mode in (0o644, 0o640, 0o604):
        path.chmod(mode)
        write_atomic(path, b"new")
        assert _mode(path) == mode
        assert path.read_bytes() == b"new"


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    write_atomic(tmp_path / "a.bin", "text")
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_writing_over_a_directory_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(VmLayoutError, match="is a directory"):
        write_atomic(tmp_path / "d", b"x")
    assert not [p for p in (tmp_path / "d").iterdir()]


def test_a_new_directory_is_0777_minus_the_umask(tmp_path: Path, umask_022: None) -> None:
    write_directory_atomic(tmp_path / "set", {"a": b"1", "b": "2"})
    assert _mode(tmp_path / "set") == 0o755
    assert {p.name: _mode(p) for p in (tmp_path / "set").iterdir()} == {"a": 0o644, "b": 0o644}


def test_a_refreshed_directory_holds_the_new_files_and_keeps_their_modes(
    tmp_path: Path, umask_022: None
) -> None:
    out = tmp_path / "set"
    write_directory_atomic(out, {"a": b"1", "b": b"1"})
    (out / "a").chmod(0o640)
    write_directory_atomic(out, {"a": b"2", "b": b"2", "c": b"2"})
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {"a": b"2", "b": b"2", "c": b"2"}
    assert (_mode(out / "a"), _mode(out / "b"), _mode(out / "c")) == (0o640, 0o644, 0o644)


def test_files_of_the_previous_run_not_written_now_are_removed_and_others_stay(
    tmp_path: Path,
) -> None:
    out = tmp_path / "set"
    write_directory_atomic(out, {"a": b"1", "old": b"1", "record": b"1"})
    (out / "mine.txt").write_text("not vmlayout's")
    write_directory_atomic(
        out, {"a": b"2", "record": b"2"}, remove=("a", "old", "record"), commit_file="record"
    )
    assert sorted(p.name for p in out.iterdir()) == ["a", "mine.txt", "record"]
    assert (out / "mine.txt").read_text() == "not vmlayout's"


def test_a_finished_refresh_leaves_no_marker_or_staging_directory(tmp_path: Path) -> None:
    out = tmp_path / "set"
    out.mkdir()
    (out / ".vmlayout-staging.killed").mkdir()  # left by a run that was killed
    write_directory_atomic(out, {"a": b"1"}, commit_file="a")
    assert sorted(p.name for p in out.iterdir()) == ["a"]


def test_an_interrupted_refresh_is_marked_incomplete_without_its_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "set"
    write_directory_atomic(out, {"a": b"1", "record": b"1"})
    real_replace = os.replace

    def failing_replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name == "b":
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(VmLayoutError, match="No space left"):
        write_directory_atomic(out, {"a": b"2", "b": b"2", "record": b"2"}, commit_file="record")
    names = sorted(p.name for p in out.iterdir())
    assert INCOMPLETE_MARKER in names
    assert "record" not in names  # removed first, so the mixture is no set


def test_a_path_that_is_a_file_is_not_a_directory_output(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(VmLayoutError, match="not a directory"):
        write_directory_atomic(tmp_path / "f", {"a": b"1"})


def test_writing_to_a_device_writes_through_instead_of_replacing_it(tmp_path: Path) -> None:
    (tmp_path / "null").symlink_to("/dev/null")
    write_atomic(tmp_path / "null", b"discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert (tmp_path / "null").is_symlink()


def test_writing_to_a_fifo_feeds_its_reader(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_atomic(fifo, b"through the pipe")
    reader.join(10)
    assert received == [b"through the pipe"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_writing_over_a_socket_is_refused(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "s"))
        with pytest.raises(VmLayoutError, match="not a regular file"):
            write_atomic(tmp_path / "s", b"x")


# Issue 20: symbolic links, concurrent writers, the filesystem root


def test_writing_through_a_symlink_replaces_the_target_and_keeps_the_link(
    tmp_path: Path, umask_022: None
) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "corpus.jsonl"
    target.write_bytes(b"old")
    target.chmod(0o640)
    link = tmp_path / "link.jsonl"
    link.symlink_to(Path("real") / "corpus.jsonl")  # relative, as `ln -s` makes them
    chain = tmp_path / "chain.jsonl"
    chain.symlink_to(link)
    write_atomic(chain, b"new")
    assert chain.is_symlink() and link.is_symlink()
    assert target.read_bytes() == b"new" and _mode(target) == 0o640
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["corpus.jsonl"]


def test_writing_through_a_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "out.bin"
    link.symlink_to(tmp_path / "made.bin")
    write_atomic(link, b"x")
    assert link.is_symlink() and (tmp_path / "made.bin").read_bytes() == b"x"


def test_an_output_directory_through_a_symlink_is_written_in_the_target(tmp_path: Path) -> None:
    link = tmp_path / "set"
    link.symlink_to(tmp_path / "real-set")
    write_directory_atomic(link, {"a.bin": b"1"})  # created at the target
    write_directory_atomic(link, {"b.bin": b"2"}, remove=["a.bin"])  # refreshed there
    assert link.is_symlink()
    assert sorted(p.name for p in (tmp_path / "real-set").iterdir()) == ["b.bin"]


@pytest.mark.parametrize("root", ["/", "//", "/.."])
def test_a_filesystem_root_is_refused_as_an_output_directory(root: str) -> None:
    with pytest.raises(VmLayoutError, match="a filesystem root is not an output directory"):
        write_directory_atomic(root, {"DSDT.aml": b"x"})


def test_concurrent_directory_writers_take_turns_and_leave_one_whole_set(
    tmp_path: Path,
) -> None:
    """Eight threads each write a set of their own names into one directory, removing
    the names every other set uses (as `emit all` removes an earlier set's files)."""
    out = tmp_path / "set"
    sets = {i: {f"{i}-{n}.bin": f"{i}".encode() * 1000 for n in range(5)} for i in range(8)}
    everything = [name for files in sets.values() for name in files]
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            for _ in range(5):
                write_directory_atomic(out, sets[i], remove=everything)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(i,)) for i in sets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    left = sorted(p.name for p in out.iterdir())
    assert any(left == sorted(files) for files in sets.values()), left
