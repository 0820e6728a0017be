"""Values read from YAML (or given as flags) checked against the type annotations of the configuration dataclasses.

YAML gives loose types: ``window: eight`` is a string, ``gate: "off"`` a (true-looking) string, ``max_batch: true`` a
bool that Python also counts as an int. Every field's value is checked against its annotation before the dataclass
is built, so a wrong type is one line naming the key, the value and what is expected, never an error deep inside a
stage. Enumerations are ``Literal`` annotations. An annotation this module does not know is an error too, so a
field added with a new kind of type cannot go unchecked.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

NoneType = type(None)


class FieldTypeError(ValueError):
    """A value that does not fit its field's type; ``str`` is the problem without the key."""


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _expected(hint: Any) -> str:
    """``hint`` in words: 'an integer', 'one of yunet, dlib', 'a number or null' ..."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if hint is NoneType:
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_expected(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list (each {_expected(args[0])})"
        return f"a list of {len(args)} ({', '.join(_expected(a) for a in args)})"
    if origin is dict:
        return f"a mapping (keys {_expected(args[0])}, values {_expected(args[1])})"
    raise TypeError(f"no check for the annotation {hint!r}")


def check_value(value: Any, hint: Any) -> Any:
    """``value`` if it fits ``hint`` (an int given for a float becomes a float, a list for a tuple a tuple); else
    ``FieldTypeError``. ``TypeError`` for an annotation without a check."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    expected = _expected(hint)  # raises for an unknown annotation, whatever the value
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            try:
                return check_value(value, arm)
            except FieldTypeError:
                continue
    elif hint is bool or hint is str or hint is NoneType:
        if type(value) is hint:
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif origin is Literal:
        if any(type(value) is type(a) and value == a for a in args):
            return value
    elif origin is tuple and isinstance(value, list | tuple):
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) == len(value):
            try:
                return tuple(check_value(v, h) for v, h in zip(value, items, strict=True))
            except FieldTypeError:
                pass
    elif origin is dict and isinstance(value, Mapping):
        try:
            return {check_value(k, args[0]): check_value(v, args[1]) for k, v in value.items()}
        except FieldTypeError:
            pass
    raise FieldTypeError(f"expected {expected}, got {_describe(value)}")
