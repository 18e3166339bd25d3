"""`vmlayout` command line: one-line errors with exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from typing import Any

from vmlayout import __version__
from vmlayout.commands import COMMAND_MODULES, CommandGroups
from vmlayout.errors import VmLayoutError
from vmlayout.inputs import escape_control

_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<given>.*)' \(choose from (?P<choices>.*)\)$")


def did_you_mean(message: str, options: Sequence[str] = ()) -> str:
    """argparse's `invalid choice: 'reslove' (choose from 'emit', …)` with the closest
    choice named (`; did you mean resolve?`): commands, subcommands and option values;
    `unrecognized arguments: --formt` with the closest of `options`."""
    from vmlayout.schema import closest

    match = _INVALID_CHOICE.search(message)
    if match is not None:
        given, choices = match["given"], re.findall(r"'([^']*)'", match["choices"])
    elif message.startswith("unrecognized arguments: "):
        unknown = [a for a in message.split(" ")[2:] if a.startswith("--")]
        given, choices = (unknown[0].split("=")[0] if unknown else ""), list(options)
    else:
        return message
    close = closest(given, choices) if given else []
    return f"{message}; did you mean {close[0]}?" if close else message


class _Parser(argparse.ArgumentParser):
    #: The last (sub)parser that parsed: the command whose options an unrecognised
    #: argument was meant for (argparse reports it from the top-level parser).
    innermost: argparse.ArgumentParser | None = None

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        _Parser.innermost = self
        return super().parse_known_args(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        """Usage errors follow the same one-line contract as every other error."""
        options = list((_Parser.innermost or self)._option_string_actions)
        text = escape_control(did_you_mean(message, options))
        sys.stderr.write(f"error: usage: {escape_control(self.prog)}: {text}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vmlayout",
        description="Decide where everything lives in a VM's guest physical address space "
        "and write every firmware-facing description of it.",
    )
    parser.add_argument("--version", action="version", version=f"vmlayout {__version__}")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    top.required = True
    emit_parser = top.add_parser("emit", help="write a firmware view of the layout")
    emit = emit_parser.add_subparsers(dest="artifact", metavar="ARTIFACT", parser_class=_Parser)
    emit.required = True
    check_parser = top.add_parser("check", help="check a firmware view against the layout")
    check = check_parser.add_subparsers(dest="what", metavar="WHAT", parser_class=_Parser)
    check.required = True
    groups = CommandGroups(top=top, emit=emit, check=check)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
        return result
    except VmLayoutError as error:
        # User text echoed in a message must not split the one-line contract.
        sys.stderr.write(f"error: {escape_control(error.kind)}: {escape_control(error.message)}\n")
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
