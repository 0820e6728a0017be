"""Command-line flags declared beside the configuration keys they set (``dataclasses.field`` metadata), so that a
key's flag, its help and its default are written once; ``pipeline.cli.parser`` builds the flags from them and
``pipeline.cli.common.run_config`` applies the ones given."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Iterator
from typing import Any, get_type_hints


def flag(name: str, help: str, **options: Any) -> dict[str, Any]:
    """A field's metadata: the flag that sets it, its help (the parser adds the default) and further argparse
    options (``type``, ``choices``, ``action``, ``metavar``)."""
    return {"flag": name, "help": help, **options}


def flag_fields(cls: type, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field[Any], Any]]:
    """Every key of ``cls`` (nested sections included) that has a flag: its dotted path, field and type hint."""
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        if "flag" in f.metadata:
            yield path, f, hints[f.name]
        elif dataclasses.is_dataclass(hints[f.name]):
            yield from flag_fields(hints[f.name], f"{path}.")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def switch(text: str) -> bool:
    """``on`` / ``off``."""
    if text not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"must be on or off, got {text}")
    return text == "on"


def member_scale(text: str) -> int | None:
    """``auto`` (None: each face to the member that fits it), 2, 4 or 8."""
    if text == "auto":
        return None
    if text in ("2", "4", "8"):
        return int(text)
    raise argparse.ArgumentTypeError(f"must be auto, 2, 4 or 8, got {text}")


def split_parts(text: str) -> str | int:
    return text if text == "auto" else positive_int(text)


def resources(text: str) -> dict[str, float]:
    """A JSON object of Ray resource amounts."""
    try:
        value = json.loads(text)
        if isinstance(value, dict) and all(isinstance(v, int | float) for v in value.values()):
            return {str(k): float(v) for k, v in value.items()}
    except json.JSONDecodeError:
        pass
    raise argparse.ArgumentTypeError(f"takes a JSON object of resource amounts, e.g. '{{\"node2\": 1}}', got {text!r}")
