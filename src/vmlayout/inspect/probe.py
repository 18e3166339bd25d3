"""What a running guest saw: the `vmlayout probe` script that collects it, and a safe
reader for the `.tar.gz` (or directory) it writes.

The script copies the guest's own files under their own paths (`proc/iomem`,
`sys/firmware/acpi/tables/DSDT`, …) plus the kernel log as `dmesg.txt`, so a dump is
readable by hand and `vmlayout verify` needs no guest-specific format. Proc and sysfs
files report sizes of 0 or 4096, so every file is read with `cat`, never archived
directly. A dump is untrusted input: members are bounded in count and size, only
regular files under relative, non-escaping paths are read.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vmlayout.errors import VmLayoutError
from vmlayout.inputs import MAX_INPUT_BYTES, read_bytes, shown

#: Single files the probe copies (absolute guest paths).
PROBE_FILES = (
    "/proc/iomem",
    "/proc/cpuinfo",
    "/proc/cmdline",
    "/proc/mtrr",
    "/proc/interrupts",
    "/sys/firmware/fdt",
    "/sys/devices/system/cpu/online",
    "/sys/devices/system/cpu/possible",
    "/sys/devices/system/cpu/present",
)
#: (directory glob, files in each match) the probe copies.
PROBE_GLOBS = (
    ("/sys/firmware/memmap/*", ("start", "end", "type")),
    ("/sys/devices/system/node/node[0-9]*", ("cpulist", "distance", "meminfo")),
    ("/sys/bus/pci/devices/*", ("vendor", "device", "class", "resource", "numa_node")),
)
#: Every regular file below these directories.
PROBE_TREES = ("/sys/firmware/acpi/tables",)
DMESG = "dmesg.txt"

#: Bounds on a dump: members, bytes per member, bytes in all.
MAX_MEMBERS = 20_000
MAX_MEMBER_BYTES = 16 << 20
MAX_TOTAL_BYTES = 64 << 20


def probe_script() -> str:
    """The POSIX sh script (busybox is enough) a user runs as root in the guest."""
    singles = " \\\n    ".join(PROBE_FILES)
    globs = "\n".join(
        f'for d in {pattern}; do for f in {" ".join(names)}; do grab "$d/$f"; done; done'
        for pattern, names in PROBE_GLOBS
    )
    trees = "\n".join(
        f'find {tree} -type f 2>/dev/null | while read -r f; do grab "$f"; done'
        for tree in PROBE_TREES
    )
    return f"""#!/bin/sh
# vmlayout probe: collect what this guest's kernel saw of its address space into one
# .tar.gz for `vmlayout verify CONFIG GUEST`. Run as root:  sh probe.sh [OUT.tar.gz]
# It copies files under their own paths (proc/iomem, sys/firmware/...) and the kernel
# log as {DMESG}; nothing is changed in the guest. Needs sh, cat, find, tar, gzip, dmesg.
set -u
out="${{1:-vmlayout-guest.tar.gz}}"
case "$out" in /*) ;; *) out="$(pwd)/$out" ;; esac
work="$(mktemp -d /tmp/vmlayout-probe.XXXXXX)" || exit 1
trap 'rm -rf "$work"' EXIT INT TERM
grab() {{
  [ -f "$1" ] && [ -r "$1" ] || return 0
  mkdir -p "$work/root$(dirname "$1")"
  cat "$1" > "$work/root$1" 2>/dev/null || rm -f "$work/root$1"
}}
for f in {singles}; do
  grab "$f"
done
{globs}
{trees}
dmesg -s 16777216 > "$work/root/{DMESG}" 2>/dev/null || dmesg > "$work/root/{DMESG}"
(cd "$work/root" && tar -czf - .) > "$out" || exit 1
echo "vmlayout probe: wrote $out"
"""


@dataclass(frozen=True, slots=True)
class GuestDump:
    """A guest's files by relative path (`proc/iomem`, `dmesg.txt`, …)."""

    source: str
    files: Mapping[str, bytes]

    def text(self, path: str) -> str | None:
        data = self.files.get(path)
        return None if data is None else data.decode("utf-8", "replace")

    def under(self, prefix: str) -> dict[str, bytes]:
        """Files below directory `prefix`, by their path relative to it."""
        base = prefix.rstrip("/") + "/"
        return {p[len(base) :]: d for p, d in self.files.items() if p.startswith(base)}


def _clean(name: str, source: str) -> str | None:
    """A member name as a relative path, or None for the archive root; escaping or
    absolute names are bad input."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise VmLayoutError("invalid_guest", f"{source}: member {name!r} escapes the dump")
    parts = [p for p in path.parts if p != "."]
    return "/".join(parts) if parts else None


def read_guest(path: str | Path) -> GuestDump:
    """The dump at `path`: a probe `.tar.gz` (or plain tar) or a directory of its files."""
    p = Path(path)
    if not p.exists():
        raise VmLayoutError("invalid_input", f"{shown(p)}: no such file or directory")
    if p.is_dir():
        return _read_directory(p)
    return read_guest_archive(read_bytes(p, "invalid_guest"), shown(p))


def read_guest_archive(data: bytes, source: str) -> GuestDump:
    files: dict[str, bytes] = {}
    total = 0
    stream: io.RawIOBase | gzip.GzipFile = _Bounded(io.BytesIO(data))
    if data[:2] == b"\x1f\x8b":
        stream = gzip.GzipFile(fileobj=io.BytesIO(data))
    try:
        with tarfile.open(fileobj=_Bounded(stream), mode="r|") as archive:
            for count, member in enumerate(archive, start=1):
                if count > MAX_MEMBERS:
                    raise VmLayoutError(
                        "invalid_guest", f"{source}: more than {MAX_MEMBERS} members"
                    )
                name = _clean(member.name, source)
                if name is None or member.isdir():
                    continue
                if not member.isreg():
                    continue  # links and devices are not the guest's data
                if member.size > MAX_MEMBER_BYTES or total + member.size > MAX_TOTAL_BYTES:
                    raise VmLayoutError(
                        "invalid_guest", f"{source}: {name}: too large for a guest dump"
                    )
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                content = handle.read(member.size + 1)
                total += len(content)
                files[name] = content
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as error:
        raise VmLayoutError("invalid_guest", f"{source}: not a probe archive ({error})") from None
    if not files:
        raise VmLayoutError("invalid_guest", f"{source}: the archive holds no files")
    return GuestDump(source, files)


class _Bounded(io.RawIOBase):
    """Reads at most MAX_TOTAL_BYTES (plus tar headers' worth) from a stream, so a
    compressed dump cannot expand without limit whatever its members claim."""

    LIMIT = MAX_TOTAL_BYTES + MAX_MEMBERS * 1024

    def __init__(self, inner: io.RawIOBase | io.BufferedIOBase | gzip.GzipFile) -> None:
        self._inner = inner
        self._read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        want = self.LIMIT + 1 - self._read if size is None or size < 0 else size
        chunk = self._inner.read(min(want, self.LIMIT + 1 - self._read))
        self._read += len(chunk)
        if self._read > self.LIMIT:
            raise ValueError("expands beyond the size bound of a guest dump")
        return bytes(chunk)


def _read_directory(root: Path) -> GuestDump:
    files: dict[str, bytes] = {}
    total = 0
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if not os.path.islink(os.path.join(directory, d))]
        for name in names:
            full = Path(directory) / name
            mode = os.lstat(full).st_mode
            if not stat.S_ISREG(mode):
                continue
            if len(files) >= MAX_MEMBERS:
                raise VmLayoutError(
                    "invalid_guest", f"{shown(root)}: more than {MAX_MEMBERS} files"
                )
            content = read_bytes(full, "invalid_guest")
            total += len(content)
            if total > MAX_TOTAL_BYTES:
                raise VmLayoutError("invalid_guest", f"{shown(root)}: too large for a guest dump")
            files[full.relative_to(root).as_posix()] = content
    if not files:
        raise VmLayoutError("invalid_guest", f"{shown(root)}: the directory holds no files")
    return GuestDump(shown(root), files)


assert MAX_TOTAL_BYTES <= MAX_INPUT_BYTES
