"""CLI command groups. Each module registers its subcommands; module-level imports stay
light (argparse only) so `vmlayout --help` and cold start remain fast, and each handler
imports what it needs when it runs."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

#: Modules whose `register(groups)` adds subcommands, in help order.
COMMAND_MODULES = (
    "vmlayout.commands.core",
    "vmlayout.commands.tools",
    "vmlayout.commands.x86",
    "vmlayout.commands.acpi",
    "vmlayout.commands.devicetree",
    "vmlayout.commands.artifacts",
    "vmlayout.commands.fit",
    "vmlayout.commands.guest",
)

#: Modules for `vmlayout inspect PATH`, each providing
#:   sniff(path: Path, data: bytes | None) -> bool     (data is None for a directory)
#:   inspect(path: Path, data: bytes | None, fmt: str) -> tuple[str, int]
#: (printed text, exit status; fmt is "table" or "json"). First whose sniff accepts wins;
#: decoding errors raise VmLayoutError (one line, exit 2).
INSPECTOR_MODULES: tuple[str, ...] = (
    "vmlayout.inspect.uefi",
    "vmlayout.inspect.acpi",
    "vmlayout.inspect.dtb",
    "vmlayout.inspect.pcat",
    "vmlayout.inspect.views",
    "vmlayout.inspect.pci",
    "vmlayout.inspect.igvm",
    "vmlayout.inspect.e820",
)


@dataclass(frozen=True)
class CommandGroups:
    top: Any  # argparse._SubParsersAction (private type)
    emit: Any
    check: Any


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """CONFIG and --arch, shared by every command that resolves a layout."""
    parser.add_argument(
        "config",
        nargs="?",
        metavar="CONFIG",
        help="TOML or JSON config file, `-` for standard input (default: the built-in default VM)",
    )
    parser.add_argument(
        "--arch", choices=("x86_64", "aarch64"), help="override the config's architecture"
    )


def load_config_from_args(args: argparse.Namespace) -> Any:
    """The `VmConfig` named by CONFIG/--arch (imports the config stage lazily)."""
    from vmlayout.config import DEFAULT_VM, config_from_dict, config_to_dict, load_config

    if args.config is None:
        if args.arch is None:
            return DEFAULT_VM
        data = config_to_dict(DEFAULT_VM)
        del data["chipset_low_mmio_size"]  # follow the chosen architecture's default
        return config_from_dict(data, args.arch)
    return load_config(args.config, args.arch)


def resolve_from_args(args: argparse.Namespace) -> Any:
    from vmlayout.policy import resolve

    return resolve(load_config_from_args(args))
