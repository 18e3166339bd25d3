"""Device trees as plain values, built and read with libfdt (pylibfdt).

A tree is declared as nested `Node`s with properties in emission order (the order is
part of the spec); libfdt's sequential writer turns it into a blob and its reader
turns any blob back into the same value, so emitters and parsers meet in one type.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from vmlayout.errors import VmLayoutError

FDT_MAGIC = 0xD00DFEED


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    properties: tuple[tuple[str, bytes], ...] = ()
    children: tuple[Node, ...] = field(default=())

    def prop(self, name: str) -> bytes | None:
        for key, value in self.properties:
            if key == name:
                return value
        return None

    def child(self, name: str) -> Node | None:
        for c in self.children:
            if c.name == name:
                return c
        return None


def u32(value: int) -> bytes:
    return struct.pack(">I", value)


def u32s(*values: int) -> bytes:
    return b"".join(struct.pack(">I", v) for v in values)


def u64s(*values: int) -> bytes:
    return b"".join(struct.pack(">Q", v) for v in values)


def string(text: str) -> bytes:
    return text.encode() + b"\0"


def empty() -> bytes:
    return b""


def unit_name(base: str, address: int | None) -> str:
    return base if address is None else f"{base}@{address:x}"


def build_fdt(root: Node, boot_cpuid_phys: int = 0) -> bytes:
    import libfdt

    sw = libfdt.FdtSw()
    sw.INC_SIZE = 64 * 1024

    def emit(node: Node) -> None:
        sw.begin_node(node.name)
        for key, value in node.properties:
            sw.property(key, value)
        for child in node.children:
            emit(child)
        sw.end_node()

    sw.finish_reservemap()
    emit(root)
    fdt = sw.as_fdt()
    fdt.pack()
    blob = bytearray(fdt.as_bytearray())
    blob[28:32] = u32(boot_cpuid_phys)  # header field boot_cpuid_phys
    return bytes(blob)


def _bad(reason: str) -> VmLayoutError:
    return VmLayoutError("invalid_dtb", reason)


def read_fdt(blob: bytes) -> Node:
    """The whole tree; any malformed blob is a one-line error."""
    import libfdt

    if len(blob) < 40:
        raise _bad(f"{len(blob)} bytes is shorter than an FDT header")
    magic, total = struct.unpack_from(">II", blob)
    if magic != FDT_MAGIC:
        raise _bad(f"bad magic {magic:#x} (expected {FDT_MAGIC:#x})")
    if total != len(blob):
        raise _bad(f"header totalsize {total} but {len(blob)} bytes present")
    try:
        fdt = libfdt.Fdt(bytes(blob))
        _check_full(fdt, blob)

        def walk(offset: int, name: str, depth: int) -> Node:
            if depth > 64:
                raise _bad("tree nested deeper than 64 levels")
            props = []
            poff = fdt.first_property_offset(offset, [libfdt.NOTFOUND])
            while poff >= 0:
                prop = fdt.get_property_by_offset(poff)
                props.append((prop.name, bytes(prop)))
                poff = fdt.next_property_offset(poff, [libfdt.NOTFOUND])
            children = []
            child = fdt.first_subnode(offset, [libfdt.NOTFOUND])
            while child >= 0:
                children.append(walk(child, fdt.get_name(child), depth + 1))
                child = fdt.next_subnode(child, [libfdt.NOTFOUND])
            return Node(name, tuple(props), tuple(children))

        return walk(0, "", 0)
    except libfdt.FdtException as error:
        raise _bad(f"libfdt: {error}") from None
    except (UnicodeDecodeError, ValueError, SystemError) as error:
        # pylibfdt surfaces undecodable names as SystemError from its C layer
        raise _bad(f"malformed tree: {str(error).splitlines()[0]}") from None


def _check_full(fdt: object, blob: bytes) -> None:
    """libfdt's fdt_check_full via ctypes is not exposed by pylibfdt, so validate the
    structure block the same way before walking it: every token in bounds, names
    terminated, properties pointing inside the strings block, nodes balanced."""
    (_, total, off_struct, off_strings, _, version, _, _, size_strings, size_struct) = (
        struct.unpack_from(">10I", blob)
    )
    if version < 17:
        raise _bad(f"FDT version {version} is older than 17")
    if off_struct + size_struct > total or off_strings + size_strings > total:
        raise _bad("structure or strings block runs past the blob")
    offset, end, depth = off_struct, off_struct + size_struct, 0
    while True:
        if offset + 4 > end:
            raise _bad(f"structure block truncated at {offset:#x}")
        (token,) = struct.unpack_from(">I", blob, offset)
        offset += 4
        if token == 1:  # BEGIN_NODE
            nul = blob.find(b"\0", offset, end)
            if nul < 0:
                raise _bad(f"unterminated node name at {offset:#x}")
            offset = (nul + 4) & ~3
            depth += 1
        elif token == 2:  # END_NODE
            depth -= 1
            if depth < 0:
                raise _bad(f"unbalanced END_NODE at {offset - 4:#x}")
        elif token == 3:  # PROP
            if offset + 8 > end:
                raise _bad(f"property header truncated at {offset:#x}")
            length, name_off = struct.unpack_from(">II", blob, offset)
            offset += 8
            if offset + length > end:
                raise _bad(f"property value runs past the structure block at {offset:#x}")
            if (
                name_off >= size_strings
                or blob.find(b"\0", off_strings + name_off, off_strings + size_strings) < 0
            ):
                raise _bad(f"property name offset {name_off} is outside the strings block")
            offset = (offset + length + 3) & ~3
        elif token == 4:  # NOP
            continue
        elif token == 9:  # END
            if depth != 0:
                raise _bad("structure block ends inside a node")
            return
        else:
            raise _bad(f"unknown structure token {token:#x} at {offset - 4:#x}")


def _format_value(name: str, value: bytes) -> str:
    if not value:
        return ""
    printable = (
        value[-1:] == b"\0"
        and all(32 <= b < 127 or b == 0 for b in value)
        and b"\0\0" not in value
        and value[0] != 0
    )
    if printable and name not in ("reg", "ranges", "interrupts"):
        strings = value[:-1].decode().split("\0")
        return " = " + ", ".join(f'"{s}"' for s in strings)
    if len(value) % 4 == 0:
        cells = struct.unpack(f">{len(value) // 4}I", value)
        return " = <" + " ".join(f"{c:#x}" for c in cells) + ">"
    return " = [" + " ".join(f"{b:02x}" for b in value) + "]"


def to_dts(root: Node) -> str:
    """dts source of a tree, from our own reader (not dtc)."""
    lines = ["/dts-v1/;", ""]

    def emit(node: Node, indent: int) -> None:
        pad = "    " * indent
        lines.append(f"{pad}{node.name or '/'} {{")
        for key, value in node.properties:
            lines.append(f"{pad}    {key}{_format_value(key, value)};")
        for child in node.children:
            emit(child, indent + 1)
        lines.append(f"{pad}}};")

    emit(root, 0)
    return "\n".join(lines) + "\n"


def decoded_tree(root: Node) -> dict[str, dict[str, str]]:
    """{node path: {property: lower-case hex}}: the comparison form of a tree, in which
    property order and string-table layout do not count."""
    out: dict[str, dict[str, str]] = {}

    def walk(node: Node, path: str) -> None:
        out[path] = {key: value.hex() for key, value in node.properties}
        for child in node.children:
            walk(child, f"{path.rstrip('/')}/{child.name}")

    walk(root, "/")
    return out


def cells(value: bytes, what: str) -> tuple[int, ...]:
    if len(value) % 4:
        raise _bad(f"{what}: {len(value)} bytes is not whole cells")
    return struct.unpack(f">{len(value) // 4}I", value)


def u64_array(value: bytes, what: str) -> tuple[int, ...]:
    if len(value) % 8:
        raise _bad(f"{what}: {len(value)} bytes is not whole u64 values")
    return struct.unpack(f">{len(value) // 8}Q", value)
