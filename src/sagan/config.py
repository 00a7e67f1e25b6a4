"""Typed configuration: dataclasses built from dicts (YAML files, command-line flags) and back.

Each application defines frozen dataclasses whose ``__post_init__`` validates its fields with the
checks below, raising :class:`~sagan.errors.SaganError` with a one-line message that names the
field and the allowed values. :func:`from_dict` builds (nested) dataclasses from plain data,
coercing YAML/CLI values to the annotated types and rejecting unknown keys.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import math
import textwrap
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sagan.errors import SaganError

__all__ = [
    "ConfigFlag",
    "add_config_flags",
    "check_choice",
    "check_positive",
    "check_range",
    "field_docs",
    "flag_overrides",
    "from_dict",
    "from_dict_with_preset",
    "load_yaml",
    "merge",
    "to_dict",
    "write_yaml",
]

T = TypeVar("T")


def check_positive(field: str, value: float, *, allow_zero: bool = False) -> None:
    """Raise if ``value`` is not a finite number > 0 (or >= 0 with ``allow_zero``)."""
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise SaganError(f"{field}: {value!r} is not allowed; it must be {bound}")


def check_range(field: str, value: float, low: float, high: float) -> None:
    """Raise unless ``low <= value <= high`` (NaN is out of every range)."""
    if not low <= value <= high:
        raise SaganError(f"{field}: {value!r} is out of range; it must be in [{low}, {high}]")


def check_choice(field: str, value: object, choices: Iterable[object]) -> None:
    """Raise unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        allowed = ", ".join(str(c) for c in choices)
        raise SaganError(f"{field}: {value!r} is not allowed; use one of: {allowed}")


def _coerce(field: str, value: Any, hint: Any) -> Any:
    """Convert ``value`` to the annotated type ``hint`` or raise a one-line SaganError."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _coerce(field, value, option)
            except SaganError as exc:
                errors.append(str(exc))
        raise SaganError(errors[0])
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise SaganError(f"{field}: expected a mapping of settings, got {value!r}")
        return from_dict(hint, value, prefix=f"{field}.")
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace(",", " ").split() if v]
        if isinstance(value, (int, float)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise SaganError(f"{field}: expected a list, got {value!r}")
        return tuple(_coerce(field, v, args[0]) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        raise SaganError(f"{field}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise SaganError(f"{field}: expected an integer, got {value!r}")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise SaganError(f"{field}: expected an integer, got {value!r}") from None
        if not -(2**63) <= number < 2**63:  # torch and numpy take 64-bit integers
            raise SaganError(f"{field}: {value!r} is too large; give a value below 2**63")
        return number
    if hint is float:
        if isinstance(value, bool):
            raise SaganError(f"{field}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise SaganError(f"{field}: expected a number, got {value!r}") from None
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise SaganError(f"{field}: expected a string, got {value!r}")
        return str(value)
    raise TypeError(f"unsupported config type {hint!r} for {field}")  # a programming error


def from_dict(cls: type[T], data: Mapping[str, Any], *, prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; missing keys take their defaults."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise SaganError(
            f"unknown setting {prefix + unknown[0]!r}; known settings"
            f"{' of ' + prefix.rstrip('.') if prefix else ''}: {', '.join(sorted(names))}"
        )
    kwargs = {k: _coerce(f"{prefix}{k}", v, hints[k]) for k, v in data.items()}
    return cls(**kwargs)


def from_dict_with_preset(
    cls: type[T], data: Mapping[str, Any], presets: Mapping[str, Mapping[str, Any]]
) -> T:
    """:func:`from_dict` for a run config with a ``preset`` field: the settings of the preset
    ``data`` names (else the field's default) sit under those ``data`` gives."""
    default = next(f.default for f in dataclasses.fields(cls) if f.name == "preset")  # type: ignore[arg-type]
    preset = data.get("preset", default)
    check_choice("preset", preset, presets)
    return from_dict(cls, merge(presets[preset], data))


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain-data form of a (nested) dataclass: tuples become lists, for YAML and JSON."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(obj)


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: values of ``override`` win; nested mappings are merged."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping from ``path``, with a one-line error for a missing or bad file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SaganError(
            f"cannot read config file {path}: {exc.strerror or exc}; give --config an existing "
            "YAML file"
        ) from None
    except UnicodeDecodeError:
        raise SaganError(
            f"config file {path} is not UTF-8 text; save it as UTF-8 (or give a YAML file)"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = ""
        if mark is not None:  # a mark past the last line: something left open at the end
            lines = len(text.splitlines())
            where = f" at line {mark.line + 1}" if mark.line < lines else " at the end of the file"
        raise SaganError(f"config file {path} is not valid YAML{where}; correct it there") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SaganError(f"config file {path} must hold a mapping of settings, not {data!r}")
    return data


def write_yaml(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as YAML (keys in the order given)."""
    path.write_text(yaml.safe_dump(dict(data), sort_keys=False), encoding="utf-8")


# --- command-line flags from the schema ---------------------------------------------------


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstrings of ``cls``'s dataclass fields (the string literal under each field),
    read from the source of ``cls`` and its dataclass bases; a subclass's doc wins."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):  # no source (e.g. a frozen install)
            continue
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, after in zip(body, [*body[1:], None], strict=True):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


@dataclasses.dataclass(frozen=True)
class ConfigFlag:
    """One command-line flag made from one config field."""

    flag: str
    """The option, e.g. ``--lr-g``."""
    dest: str
    """Where argparse stores it: ``section.field``."""
    section: str
    """The config section (``""`` for a field of the top-level dataclass)."""
    field: str


def _int_items(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers like 16 or 16,32, got {text!r}"
        ) from None


def _show_default(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value) or "none"
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value) if value != "" else "empty"


def add_config_flags(
    parser: argparse.ArgumentParser | Any, cls: type, section: str = ""
) -> list[ConfigFlag]:
    """Add one flag per field of dataclass ``cls`` (recursing into dataclass-typed fields,
    each a section with its own argument group) and return what was added.

    The flag is the field's name with dashes (or ``field(metadata={"flag": "--name"})``), its
    help the field's docstring and default; fields with ``metadata={"cli": False}`` (values
    filled in from the data) get none. Flags default to "not given" (``argparse.SUPPRESS``),
    so that :func:`flag_overrides` returns only what the user typed.
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    added: list[ConfigFlag] = []
    group = parser
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            sub = (
                parser.add_argument_group(f.name)
                if hasattr(parser, "add_argument_group")
                else parser
            )
            added += add_config_flags(sub, hint, f.name)  # type: ignore[arg-type]
            continue
        if not f.metadata.get("cli", True):
            continue
        flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        doc = " ".join(docs.get(f.name, "").split()).replace("``", "").replace("%", "%%")
        help_text = f"{doc} (default: {_show_default(default)})".strip()
        dest = f"{section}.{f.name}" if section else f.name
        kwargs: dict[str, Any] = {"dest": dest, "help": help_text, "default": argparse.SUPPRESS}
        base = hint
        if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None: X
            base = next(a for a in typing.get_args(hint) if a is not type(None))
        if base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(base) is tuple:
            kwargs |= {"type": _int_items, "nargs": "*", "metavar": "N"}
        else:
            metavar = {int: "N", float: "X"}.get(base, "TEXT")
            kwargs |= {"type": base, "metavar": f.metadata.get("metavar", metavar)}
        group.add_argument(flag, **kwargs)
        added.append(ConfigFlag(flag, dest, section, f.name))
    return added


def flag_overrides(args: argparse.Namespace, flags: Iterable[ConfigFlag]) -> dict[str, Any]:
    """The config flags given on the command line, as nested plain data
    ``{section: {field: value}}`` (top-level fields at the top)."""
    given = vars(args)
    out: dict[str, Any] = {}
    for f in flags:
        if f.dest not in given:
            continue
        value = given[f.dest]
        if isinstance(value, list) and all(isinstance(v, list) for v in value):
            value = [x for part in value for x in part]  # nargs="*" of comma lists
        if f.section:
            out.setdefault(f.section, {})[f.field] = value
        else:
            out[f.field] = value
    return out
