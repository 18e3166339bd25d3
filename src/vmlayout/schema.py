"""Config sections declared once: a dataclass field carries its default, its limits and
its documentation, and the loader, the serializer and the docs all read that one
declaration.

A hand-kept list of keys next to a dataclass drifts: a field is added to one and not the
other, or a default is written twice and changes in one place. Here the dataclass *is*
the list. `setting()` declares a field; `section_from_data` reads a TOML/JSON table into
the dataclass (refusing unknown keys with "did you mean"), `section_to_data` writes it
back, `section_rows` lists every field with its default for the documentation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from vmlayout.errors import VmLayoutError
from vmlayout.inputs import shown
from vmlayout.ranges import format_address, parse_size

T = TypeVar("T")

U64_LIMIT = 1 << 64

#: Metadata keys of `setting()`.
_DOC, _KIND, _CHOICES, _LOW, _HIGH, _KEY = "doc", "kind", "choices", "low", "high", "key"


def setting(
    default: Any,
    doc: str,
    *,
    kind: str | None = None,
    choices: tuple[str, ...] = (),
    low: int = 0,
    high: int = U64_LIMIT - 1,
    key: str | None = None,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field with what the loader and docs need. `kind` is inferred from the
    default (`bool`, `int`, `str`, a nested section) unless given: `"size"` (sizes with
    units or `0x` hex, like every address and size in a config), `"hex"` (bytes as a hex
    string), `"optional_size"` / `"optional_int"` (may be absent: None)."""
    metadata = {_DOC: doc, _KIND: kind, _CHOICES: choices, _LOW: low, _HIGH: high, _KEY: key}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def config_error(path: str, reason: str, kind: str = "invalid_config") -> VmLayoutError:
    return VmLayoutError(kind, f"{path}: {reason}")


def key_of(field: dataclasses.Field[Any]) -> str:
    """The name a config file uses for the field (usually the field's own name)."""
    return str(field.metadata.get(_KEY) or field.name)


def keys_of(cls: type) -> tuple[str, ...]:
    return tuple(key_of(f) for f in dataclasses.fields(cls))


def closest(word: str, choices: Iterable[str], n: int = 1) -> list[str]:
    """The `n` names nearest `word` (difflib's ratio of 0.6 or more): the one rule every
    "did you mean" of the CLI, the config and the tools uses."""
    import difflib  # only on the error path: cold start stays cheap

    return difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)


def did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    """`; did you mean 'x'?` for the closest choice, or an empty string."""
    close = closest(word, choices)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_keys(data: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    """Refuse a key the section does not have, naming the closest one."""
    for key in data:
        if key not in allowed:
            prefix = f"{path}." if path else ""
            hint = did_you_mean(str(key), allowed)
            raise config_error(
                f"{prefix}{shown(key)}",
                f"unknown key{hint} (expected one of: {', '.join(allowed)})",
            )


def expect_mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise config_error(path, f"expected a table/object, got {type(value).__name__}")
    return value


def parse_int(value: object, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise config_error(path, f"expected an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise config_error(path, f"{value} is out of range {low}..{high}")
    return value


def parse_bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise config_error(path, f"expected true or false, got {value!r}")
    return value


def parse_size_value(value: object, path: str, low: int = 0, high: int = U64_LIMIT - 1) -> int:
    size = parse_size(value, path)
    if size > high:
        raise config_error(path, f"{size:#x} is too large (must be at most {high:#x})")
    if size < low:
        raise config_error(path, f"{size:#x} is too small (must be at least {low:#x})")
    return size


def _kind(field: dataclasses.Field[Any]) -> str:
    kind = field.metadata.get(_KIND)
    if kind:
        return str(kind)
    default = _default(field)
    if dataclasses.is_dataclass(default):
        return "section"
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, str):
        return "str"
    raise TypeError(f"{field.name}: declare the kind of a {type(default).__name__} setting")


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def parse_field(field: dataclasses.Field[Any], value: object, path: str, kind_of_error: str) -> Any:
    """One value of a declared kind (raises KeyError for a kind the caller parses)."""
    kind, meta = _kind(field), field.metadata
    low, high = meta.get(_LOW, 0), meta.get(_HIGH, U64_LIMIT - 1)
    if kind == "section":
        return section_from_data(type(_default(field)), value, path, kind_of_error)
    if kind == "bool":
        return parse_bool(value, path)
    if kind in ("int", "optional_int"):
        if value is None and kind == "optional_int":
            return None
        return parse_int(value, path, low, high)
    if kind in ("size", "optional_size"):
        if value is None and kind == "optional_size":
            return None
        return parse_size_value(value, path, low, high)
    if kind == "str":
        if not isinstance(value, str):
            raise config_error(path, f"expected a string, got {type(value).__name__}")
        choices = meta.get(_CHOICES) or ()
        if choices and value not in choices:
            raise config_error(
                path, f"{value!r} is not one of {', '.join(choices)}{did_you_mean(value, choices)}"
            )
        if not value.isprintable() or len(value) > high:
            raise config_error(path, "must be printable text of a sane length")
        return value
    if kind == "hex":
        if not isinstance(value, str):
            raise config_error(path, f"expected a hex string, got {type(value).__name__}")
        try:
            data = bytes.fromhex(value)
        except ValueError:
            raise config_error(path, "not a hex string") from None
        if not low <= len(data) <= high:
            raise config_error(path, f"must be {low} bytes" if low == high else "bad length")
        return data
    raise KeyError(kind)


def section_from_data(
    cls: type[T], value: object, path: str, error_kind: str = "invalid_config"
) -> T:
    """Read one section (a table) into `cls`; omitted keys take the declared defaults.
    Errors name the key path; `error_kind` is `invalid_config` for files."""
    data = expect_mapping(value, path)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    check_keys(data, tuple(key_of(f) for f in fields), path)
    values = {}
    for field in fields:
        key = key_of(field)
        if key in data:
            values[field.name] = parse_field(field, data[key], f"{path}.{key}", error_kind)
    try:
        return cls(**values)
    except VmLayoutError as error:  # a cross-field rule of the section
        raise config_error(path, error.message, error_kind) from None


def dump_field(field: dataclasses.Field[Any], value: Any) -> Any:
    kind = _kind(field)
    if kind == "section":
        return section_to_data(value)
    if kind == "hex":
        return bytes(value).hex()
    return value


def section_to_data(section: Any) -> dict[str, Any]:
    """Every field explicit (a record must not depend on today's defaults)."""
    return {key_of(f): dump_field(f, getattr(section, f.name)) for f in dataclasses.fields(section)}


def section_rows(cls: type, prefix: str) -> list[tuple[str, str, str]]:
    """(key path, default as a config would spell it, doc) for every setting of `cls`
    and its nested sections, for docs/config.md (a test keeps the page in step)."""
    rows: list[tuple[str, str, str]] = []
    for field in dataclasses.fields(cls):
        path = f"{prefix}.{key_of(field)}"
        default = _default(field)
        if _kind(field) == "section":
            rows += section_rows(type(default), path)
            continue
        rows.append((path, spell_default(field, default), str(field.metadata.get(_DOC, ""))))
    return rows


def spell_default(field: dataclasses.Field[Any], default: Any) -> str:
    kind = _kind(field)
    if default is None:
        return "(none)"
    if isinstance(default, bool):
        return "true" if default else "false"
    if kind in ("size", "optional_size"):
        return format_address(default)
    if kind == "hex":
        return f'"{bytes(default).hex()}"' if any(default) else f"{len(default)} zero bytes"
    if isinstance(default, str):
        return f'"{default}"'
    return str(default)


__all__ = [
    "check_keys",
    "closest",
    "config_error",
    "did_you_mean",
    "dump_field",
    "expect_mapping",
    "keys_of",
    "parse_bool",
    "parse_field",
    "parse_int",
    "parse_size_value",
    "section_from_data",
    "section_rows",
    "section_to_data",
    "setting",
]
