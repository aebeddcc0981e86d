"""``key=value`` command-line arguments checked against a dataclass, with one-line errors.

The tools take the same ``key=value`` form as ``asyncrl.train``, but their arguments are few and not part
of the experiment's config, so a dataclass per tool is their schema: its field types say how to parse
each value, and ``MISSING`` marks a required one.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any, TypeVar

T = TypeVar("T")
MISSING = "???"  # a str field's default that means "required"
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


class UsageError(Exception):
    """Bad input to a tool, explained in one line: what was wrong and what would be right."""


def _convert(key: str, text: str, kind: Any) -> Any:
    if kind is bool:
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise UsageError(f"{key}={text!r} is not a boolean: expected {key}=true or {key}=false")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"{key}={text!r} is not an integer: expected {key}=N, e.g. {key}=10") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise UsageError(f"{key}={text!r} is not a number: expected {key}=X, e.g. {key}=0.5") from None
    return text


def parse_kv(argv: list[str], schema: type[T], usage: str) -> T:
    """``["episodes=5", "greedy=false"]`` -> ``schema(episodes=5, greedy=False)``; raises UsageError."""
    hints = typing.get_type_hints(schema)
    names = [f.name for f in dataclasses.fields(schema)]  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for arg in argv:
        key, sep, text = arg.partition("=")
        if not sep or not key:
            raise UsageError(f"expected key=value arguments, got {arg!r}; {usage}")
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UsageError(f"unknown argument {key!r} in {arg!r}; {hint}valid: {', '.join(names)}")
        values[key] = _convert(key, text, hints[key])
    missing = [n for n in names if values.get(n, getattr(schema, n, None)) == MISSING]
    if missing:
        raise UsageError(f"{missing[0]} is required: add {missing[0]}=...; {usage}")
    return schema(**values)


def check(ok: bool, key: str, given: Any, hint: str) -> None:
    """For a schema's ``__post_init__``: a value that parses but is not allowed."""
    if not ok:
        raise UsageError(f"{key}={given!r} is invalid: {hint}")


def run_tool(prog: str, doc: str, argv: list[str] | None, body: typing.Callable[[list[str]], str]) -> int:
    """The shared frame of the tools' ``main``: --help, quiet logging, bad input as one line and exit 2.

    ``body`` does the work and returns what to print on success.
    """
    import logging
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(doc.strip())
        return 0
    logging.basicConfig(level=logging.WARNING, format="asyncrl: %(message)s")
    from asyncrl.env_api.factory import EnvFactoryError
    from asyncrl.outputs.checkpoint import CheckpointError

    try:
        message = body(argv)
    except (UsageError, CheckpointError, EnvFactoryError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    print(message)
    return 0
