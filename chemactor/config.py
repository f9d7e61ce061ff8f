"""One validator for every recipe and option set: a mapping in, a typed dataclass out, or one ConfigError.

Each configuration (a generation recipe, each pipeline section, ...) is a dataclass whose field names are
the recipe keys and the command-line flags, so YAML, flags and Python share one vocabulary.
:func:`parse_config` walks a mapping against such a class before any work starts and rejects, with the
full key path and the closest valid name:

- unknown keys at any depth (``generation.sampling.temprature`` -> did you mean ``temperature``);
- values of the wrong type (``samples: ten``). A string that is clearly a number is read as one:
  ``limit: "5"`` is 5 and ``learning_rate: 1e-5`` (which YAML 1.1 loads as a string) is 1e-05, while
  ``"5.0"`` is not an integer and ``"ten"`` no number at all. An ``int`` is accepted where a ``float`` is
  expected, never a ``bool`` where a number is;
- values outside a field's choices (``typing.Literal`` fields, or ``metadata={"choices": ...}`` for
  choices known only at run time) and below a field's ``metadata={"min": ...}``.

Nested dataclass fields are parsed recursively; ``list[X]`` and ``dict[str, X]`` check every item. This
module is at the bottom layer beside :mod:`chemactor.errors` and imports nothing else from the package.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, Union

from chemactor.errors import ConfigError, closest

T = TypeVar("T")

_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")

_TYPE_NAMES: dict[type, str] = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a mapping",
}


def parse_config(
    cls: type[T],
    raw: Mapping[str, Any] | None,
    *,
    path: str = "",
    source: str = "",
    forbidden: Mapping[str, str] | None = None,
) -> T:
    """``cls(**raw)`` after checking every key and value; raises :class:`ConfigError` naming the key path.

    ``path`` prefixes key paths (``"generation"`` for a pipeline section); ``source`` (a file name) starts
    the message. ``forbidden`` maps field names the caller supplies itself to the reason they may not be set.
    """
    raw = {} if raw is None else raw
    forbidden = forbidden or {}
    if not isinstance(raw, Mapping):
        raise _error(source, path or "the recipe", f"must be a mapping of keys, got {_describe(raw)}")
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in raw.items():
        where = _join(path, str(key))
        if key in forbidden:
            raise _error(source, where, f"must not be set: {forbidden[key]}")
        if key not in fields:
            raise _error(
                source, where, f"unknown key{closest(str(key), [name for name in fields if name not in forbidden])}"
            )
        values[key] = _check(value, hints[key], fields[key], where, source)
    missing = [
        name
        for name, field in fields.items()
        if name not in values
        and name not in forbidden
        and field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise _error(source, _join(path, missing[0]), "is required")
    try:
        return cls(**values)
    except ConfigError as exc:  # a check across fields in __post_init__, which names keys relative to cls
        raise ConfigError(f"{source + ': ' if source else ''}{path + '.' if path else ''}{exc}") from None


def check_value(value: Any, hint: Any, where: str, source: str = "") -> Any:
    """``value`` checked against the type ``hint`` (as :func:`parse_config` checks a field).

    Raises :class:`ConfigError` naming ``where`` if it does not fit, and ``TypeError`` for a type this
    module does not know (an enum, a class of another library): callers checking foreign dataclasses skip those.
    """
    return _check(value, hint, None, where, source)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _error(source: str, where: str, message: str) -> ConfigError:
    return ConfigError(f"{source + ': ' if source else ''}{where}: {message}")


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"


def _check(value: Any, hint: Any, field: dataclasses.Field | None, where: str, source: str) -> Any:
    """``value`` if it fits ``hint`` (a nested dataclass parsed), else a ConfigError at ``where``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [arg for arg in args if arg is not type(None)]
        errors = []
        for option in options:
            try:
                return _check(value, option, field, where, source)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise _error(
            source, where, f"expected {' or '.join(_expected(option) for option in options)}, got {_describe(value)}"
        )
    if origin is typing.Literal:
        if value not in args:
            suggestion = closest(str(value), [str(arg) for arg in args]) if isinstance(value, str) else ""
            raise _error(source, where, f"{_describe(value)} is not one of {', '.join(map(str, args))}{suggestion}")
        return value
    if dataclasses.is_dataclass(hint):
        return parse_config(hint, value, path=where, source=source)
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, list | tuple):
            raise _error(source, where, f"expected a list, got {_describe(value)}")
        item = args[0] if args else Any
        return [_check(element, item, field, f"{where}[{index}]", source) for index, element in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise _error(source, where, f"expected a mapping, got {_describe(value)}")
        item = args[1] if len(args) == 2 else Any
        return {key: _check(element, item, None, _join(where, str(key)), source) for key, element in value.items()}
    if hint in (int, float):
        if isinstance(value, str) and (_INTEGER if hint is int else _NUMBER).fullmatch(value.strip()):
            value = hint(value.strip())
        if isinstance(value, bool) or not isinstance(value, int | float) or (hint is int and isinstance(value, float)):
            raise _error(source, where, f"expected {_TYPE_NAMES[hint]}, got {_describe(value)}")
        minimum = field.metadata.get("min") if field is not None else None
        if minimum is not None and value < minimum:
            raise _error(source, where, f"must be at least {minimum}, got {value}")
        return value
    if hint in (bool, str):
        if not isinstance(value, hint):
            raise _error(source, where, f"expected {_TYPE_NAMES[hint]}, got {_describe(value)}")
        choices = field.metadata.get("choices") if field is not None else None
        if choices is not None and value not in choices:
            raise _error(source, where, f"{value!r} is not one of {', '.join(choices)}{closest(value, choices)}")
        return value
    raise TypeError(f"parse_config does not handle the type {hint!r} of {where}")  # a bug in a config class


def _expected(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    return _TYPE_NAMES.get(origin or hint, str(hint))
