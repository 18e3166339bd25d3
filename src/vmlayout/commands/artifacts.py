"""`emit all`: every artifact of one layout in a self-describing directory."""

from __future__ import annotations

import argparse

from vmlayout.commands import CommandGroups, add_config_arguments, resolve_from_args
from vmlayout.commands.x86 import add_mtrr_policy_arguments


def register(groups: CommandGroups) -> None:
    emit_all = groups.emit.add_parser(
        "all",
        help="every firmware artifact for the config's architecture, plus config.json",
        description="Write every artifact for the config's architecture into DIR, with "
        "config.json recording the config and emitter settings so that `vmlayout inspect "
        "DIR` can cross-check the set later.",
    )
    add_config_arguments(emit_all)
    emit_all.add_argument("-o", "--output", required=True, metavar="DIR")
    add_mtrr_policy_arguments(emit_all)
    emit_all.set_defaults(handler=_emit_all)


def _emit_all(args: argparse.Namespace) -> int:
    from vmlayout.artifacts import EmitSettings, build_artifact_set
    from vmlayout.errors import VmLayoutError
    from vmlayout.output import write_directory_atomic

    if not 1 <= args.mtrr_count <= 255:
        raise VmLayoutError("invalid_argument", "--mtrr-count: must be between 1 and 255")
    resolved = resolve_from_args(args)
    settings = EmitSettings(
        mtrr_policy=args.mtrr_policy, mtrr_count=args.mtrr_count, mtrr_loader=args.loader
    )
    files = build_artifact_set(resolved, settings)
    write_directory_atomic(args.output, files)
    print(f"wrote {len(files)} files to {args.output}: {', '.join(sorted(files))}")
    return 0
