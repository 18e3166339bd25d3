"""CLI command groups. Each module registers its subcommands; module-level imports stay
light (argparse only) so `vmlayout --help` and cold start remain fast, and each handler
imports what it needs when it runs."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from vmlayout.arch import ARCH_NAMES

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
    parser.add_argument("--arch", choices=ARCH_NAMES, help="override the config's architecture")


def load_config_from_args(args: argparse.Namespace) -> Any:
    """The `VmConfig` named by CONFIG/--arch (the built-in default VM without CONFIG),
    with the processor and platform options the command was given applied: the one VM
    description every view of this run reads (imports the config stage lazily)."""
    from vmlayout.commands.platform import apply_overrides
    from vmlayout.config import default_vm, load_config

    loaded = default_vm(args.arch) if args.config is None else load_config(args.config, args.arch)
    return apply_overrides(loaded, args)


def resolve_from_args(args: argparse.Namespace) -> Any:
    from vmlayout.policy import resolve

    return resolve(load_config_from_args(args))


def resolve_for_view(args: argparse.Namespace, view: str) -> Any:
    """Resolve, refusing a config whose architecture does not have `view` (a name in
    `vmlayout.artifacts.VIEWS`)."""
    from vmlayout.artifacts import require_view

    resolved = resolve_from_args(args)
    require_view(resolved, view)
    return resolved
