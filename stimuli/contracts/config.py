"""YAML configs validated on load into dataclasses, with errors that say what to fix.

Each part of the platform describes its config as (nested) dataclasses; :func:`load_config`
reads a YAML file and builds them, refusing unknown keys (with a "did you mean"), missing
required keys, wrong types and impossible values, always naming the file and the key path.

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass
... class Staircase:
...     target: float = 0.75
...     def __post_init__(self):
...         require(0 < self.target < 1, "target", "must lie between 0 and 1")
>>> from_dict(Staircase, {"target": 0.8}, "demo.yaml").target
0.8
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from .errors import InputError

__all__ = ["load_yaml", "read_utf8", "parse_yaml", "load_config", "from_dict", "to_dict", "require", "ConfigValueError"]

T = TypeVar("T")


class ConfigValueError(ValueError):
    """Raised by a dataclass's ``__post_init__`` for an impossible value of one key.

    :func:`from_dict` turns it into an :class:`InputError` naming the file and the key path.

    Parameters
    ----------
    key : str
        The field whose value is refused.
    message : str
        Why, e.g. ``"must be positive"``.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def require(condition: bool, key: str, message: str) -> None:
    """In ``__post_init__``: refuse a value unless ``condition`` holds.

    Parameters
    ----------
    condition : bool
        What must hold.
    key : str
        The field it is about.
    message : str
        What is wrong otherwise (``"must be positive"``).

    Raises
    ------
    ConfigValueError
        When ``condition`` is false.
    """
    if not condition:
        raise ConfigValueError(key, message)


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping; a missing file, bad syntax or a non-mapping is an InputError.

    Parameters
    ----------
    path : str or path-like
        The YAML file.

    Returns
    -------
    dict
        Its mapping (an empty file gives ``{}``).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: config file not found")
    data = parse_yaml(read_utf8(path), path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: the config must be a mapping of keys to values")
    return data


def read_utf8(path: str | os.PathLike) -> str:
    """A text file's contents; bytes that are not UTF-8 are one :class:`InputError` naming the line.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    str
        Its text.

    Examples
    --------
    >>> read_utf8("experiments/bubbles_gender.yaml")[:9]   # doctest: +SKIP
    'paradigm:'
    """
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(f"{path}, line {line}: not UTF-8 text (byte 0x{data[error.start]:02x}); "
                         "save the file as UTF-8") from None


def parse_yaml(text: str, path: str | os.PathLike) -> Any:
    """YAML text parsed safely; bad syntax is one :class:`InputError` naming ``path`` and the line.

    Parameters
    ----------
    text : str
        The YAML text.
    path : str or path-like
        Where it came from, for the error message.

    Returns
    -------
    object
        The parsed value (``yaml.safe_load``).

    Examples
    --------
    >>> parse_yaml("a: 1", "x.yaml")
    {'a': 1}
    """
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InputError(f"{path}{where}: not valid YAML: {problem}") from None


def load_config(cls: type[T], path: str | os.PathLike) -> T:
    """Load ``path`` and validate it into dataclass ``cls``.

    Parameters
    ----------
    cls : type
        A dataclass whose fields are the config's keys.
    path : str or path-like
        The YAML file.

    Returns
    -------
    cls
        The validated config.
    """
    return from_dict(cls, load_yaml(path), str(path))


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin in (list, tuple):
        args = get_args(tp)
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str, where: str) -> Any:
    """Check ``value`` against type hint ``tp`` (converting where it is lossless)."""
    origin = get_origin(tp)
    bad = InputError(
        f"{where}: key '{key}' should be {_type_name(tp)}, got {value!r}"
        if not isinstance(value, (dict, list))
        else f"{where}: key '{key}' should be {_type_name(tp)}, got a {type(value).__name__}"
    )
    if tp is Any:
        return value
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise InputError(
            f"{where}: key '{key}' must be one of {', '.join(repr(a) for a in get_args(tp))}, "
            f"got {value!r}"
        )
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise bad
        errors = []
        options = [a for a in args if a is not type(None)]
        for arg in options:
            try:
                return _convert(value, arg, key, where)
            except InputError as error:
                errors.append(error)
        # a nested structure's own error is more specific than "should be X or null"
        structured = len(options) == 1 and (
            dataclasses.is_dataclass(options[0]) or get_origin(options[0]) in (list, tuple, dict)
        )
        raise errors[0] if structured and isinstance(value, (dict, list, tuple)) else bad
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad
        return from_dict(tp, value, where, prefix=f"{key}.")
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad
        args = get_args(tp)
        item_type = args[0] if args else Any
        items = [_convert(v, item_type, f"{key}[{i}]", where) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or tp is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise bad
        args = get_args(tp)
        value_type = args[1] if args else Any
        return {str(k): _convert(v, value_type, f"{key}.{k}", where) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise bad


def from_dict(cls: type[T], data: dict[str, Any], where: str, *, prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, naming ``where`` (file) and the key path in errors.

    Unknown keys get a "did you mean" hint, values are converted to the field types, nested
    dataclasses are built recursively and ``__post_init__`` checks (:func:`require`) become
    one :class:`InputError`.

    Parameters
    ----------
    cls : type
        The dataclass.
    data : dict
        The config's mapping.
    where : str
        The file (or other source) named in errors.
    prefix : str
        The key path of ``data`` inside the whole config (``"inner."``), for errors.

    Returns
    -------
    cls
        The validated config.
    """
    if not isinstance(data, dict):
        raise InputError(f"{where}: '{prefix.rstrip('.') or 'config'}' should be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = get_type_hints(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = str(unknown[0])
        close = difflib.get_close_matches(key, list(fields), n=1)
        hint = f" (did you mean '{prefix}{close[0]}'?)" if close else (
            f" (known keys: {', '.join(prefix + f for f in fields)})"
        )
        raise InputError(f"{where}: unknown key '{prefix}{key}'{hint}")
    kwargs = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], f"{prefix}{name}", where)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise InputError(f"{where}: missing required key '{prefix}{name}'")
    try:
        return cls(**kwargs)
    except ConfigValueError as error:
        raise InputError(f"{where}: key '{prefix}{error.key}' {error.message}") from None


def to_dict(obj: Any) -> Any:
    """A dataclass config as plain YAML/JSON-ready data.

    Parameters
    ----------
    obj : object
        A dataclass instance, list, tuple, dict or plain value.

    Returns
    -------
    object
        Dicts, lists and plain values (tuples become lists).
    """
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


# keep typing imported for forward references evaluated by get_type_hints
_ = typing
