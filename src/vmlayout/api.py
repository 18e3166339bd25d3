"""The stable library surface: configs in, layouts and firmware artifacts out, in memory.

A VMM's Python tooling should not have to shell out to the CLI or know which internal
module builds which view. Everything here takes plain values (a path, a mapping, keyword
arguments, a `ResolvedLayout`) and returns bytes or JSON-able objects; internal modules
stay importable but may change between versions, these functions do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vmlayout.policy import ResolvedLayout, VmConfig

ConfigSource = VmConfig | Mapping[str, Any] | str | Path | None


def load_config(
    source: ConfigSource = None, /, *, arch: str | None = None, **fields: Any
) -> VmConfig:
    """A validated `VmConfig` from a file path, a mapping, keyword fields, or nothing.

    - `load_config()` is the built-in default VM (`vmlayout resolve` with no CONFIG);
    - `load_config("vm.toml")` reads a TOML or JSON file (as the CLI does);
    - `load_config({"node_mem_sizes": ["8G"]})` or `load_config(node_mem_sizes=["8G"])`
      validate a mapping of config fields; keyword fields override the mapping's.
    `arch` overrides the architecture. Invalid input raises `VmLayoutError` whose message
    names the field.
    """
    from vmlayout.config import DEFAULT_VM, config_from_dict, config_to_dict
    from vmlayout.config import load_config as load_file

    if isinstance(source, VmConfig):
        if not fields and arch is None:
            return source
        source = config_to_dict(source)
    if isinstance(source, (str, Path)):
        if fields:
            source = {**config_to_dict(load_file(source, arch)), **fields}
        else:
            return load_file(source, arch)
    if source is None and not fields:
        if arch is None:
            return DEFAULT_VM
        data = config_to_dict(DEFAULT_VM)
        del data["chipset_low_mmio_size"]  # follow the chosen architecture's default
        return config_from_dict(data, arch)
    return config_from_dict({**(source or {}), **fields}, arch)


def resolve(config: ConfigSource = None, /, **fields: Any) -> ResolvedLayout:
    """Place everything: the same config always gives the same addresses."""
    from vmlayout.policy import resolve as resolve_config

    return resolve_config(load_config(config, **fields))


def layout_json(resolved: ResolvedLayout) -> dict[str, Any]:
    """Exactly what `vmlayout resolve --format json` prints (a resolver vector's
    `expect` object)."""
    from vmlayout.report import resolved_to_json

    return resolved_to_json(resolved)


def config_json(config: VmConfig) -> dict[str, Any]:
    """The config with every field explicit and sizes in bytes (loads back equal)."""
    from vmlayout.config import config_to_dict

    return config_to_dict(config)
