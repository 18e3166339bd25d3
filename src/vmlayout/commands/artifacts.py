"""`emit all`: every artifact of one layout in a self-describing directory."""

from __future__ import annotations

import argparse

from vmlayout.commands import CommandGroups, add_config_arguments, resolve_from_args
from vmlayout.commands.platform import ALL_GROUPS, add_platform_arguments
from vmlayout.commands.x86 import warn_ignored_mtrr_options


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
    add_platform_arguments(emit_all, ALL_GROUPS)
    emit_all.set_defaults(handler=_emit_all)


def _emit_all(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vmlayout.artifacts import (
        CONFIG_FILE,
        EmitSettings,
        build_artifact_set,
        is_artifact_name,
        previous_artifact_names,
    )
    from vmlayout.output import pending_names, write_directory_atomic

    resolved = resolve_from_args(args)
    warn_ignored_mtrr_options(args, resolved.config)
    settings = EmitSettings()
    files = build_artifact_set(resolved, settings)
    output = Path(args.output)

    def previous(directory: Path) -> tuple[str, ...]:
        """Files the previous set in DIR listed and this one lacks go (no stale x86
        views next to an aarch64 set); files vmlayout did not write stay. Read under
        the directory's lock, so a concurrent run cannot change them in between."""
        if not directory.is_dir():
            return ()
        # An interrupted run's marker names what it was writing: ours too.
        pending = pending_names(directory)
        ours = [n for n in pending if is_artifact_name(n) and n != CONFIG_FILE]
        return (*previous_artifact_names(directory), *ours)

    write_directory_atomic(output, files, remove=previous, commit_file=CONFIG_FILE)
    print(f"wrote {len(files)} files to {args.output}: {', '.join(sorted(files))}")
    return 0
