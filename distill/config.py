"""One loader for the project's typed configs: dataclasses filled from YAML, with ``base:`` files and ``--set`` overrides.

    cfg = load_config(BCConfig, "config/policy/bc-brisk-ft.yaml", overrides=["variant=3d-only", "trainer.lr=1e-4"])

A YAML file may name ``base: other.yaml`` (or a list of them), relative to itself: the bases load
first (their own bases before them), then the file's mappings merge into theirs key by key, so a
file states only what differs; a list or scalar replaces the base's value whole. Overrides
``a.b=c`` apply after all files; ``c`` is read as a YAML scalar (``3``, ``1e-4``, ``true``, ``null``,
``[1, 2]``). A string may name another key as ``${key}`` (``name: bc-${variant}-xl``; a key set in the
files or overrides, not a dataclass default); it is filled in after the overrides, so
``--set variant=3d-only`` changes every place that names it.

Values are checked against the dataclass's type hints (nested dataclasses, ``X | None``,
``tuple[...]``, ``list[...]``, ``dict[...]``, enums, ``Literal``, ``Path``; ``Any`` passes through),
and against ``field(metadata={"choices": (...)})``. Every problem is one :class:`ConfigError`
whose message reads ``<file>: <dotted key>: <what is wrong>``. Pure Python (pyyaml): no torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import enum
import functools
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
BASE_KEY = "base"
OVERRIDE_SOURCE = "--set"
_REF = re.compile(r"\$\{([A-Za-z_][\w.-]*)\}")


class ConfigError(ValueError):
    """A config that cannot be used. ``str(err)`` is ``"<source>: <key>: <message>"`` (parts that are known)."""

    def __init__(self, message: str, source: str | None = None, key: str | None = None) -> None:
        self.message, self.source, self.key = message, source, key
        super().__init__(": ".join(p for p in (source, key, message) if p))


# ----------------------------------------------------------------------------- reading files


def _flat_keys(tree: Mapping, prefix: str = "") -> Iterable[str]:
    for k, v in tree.items():
        key = f"{prefix}{k}"
        yield key
        if isinstance(v, Mapping):
            yield from _flat_keys(v, key + ".")


def deep_merge(base: Mapping, over: Mapping) -> dict:
    """``over`` merged into a copy of ``base``: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def read_yaml(path: str | Path, origins: dict[str, str] | None = None, _chain: tuple[Path, ...] = ()) -> dict:
    """The mapping of a YAML file with its ``base:`` chain merged in (the key ``base`` removed).

    ``origins``, when given, is filled with ``dotted key -> file that set it`` (for error messages).
    """
    path = Path(path)
    where = _chain[-1] if _chain else None
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist", str(where) if where else None, BASE_KEY if where else None)
    resolved = path.resolve()
    if resolved in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain[_chain.index(resolved):], resolved))
        raise ConfigError(f"base files form a cycle: {cycle}", str(where), BASE_KEY)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"not valid YAML ({err})", str(path)) from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping at the top level, got {type(raw).__name__}", str(path))
    bases = raw.pop(BASE_KEY, None)
    merged: dict = {}
    for base in [bases] if isinstance(bases, str) else (bases or []):
        if not isinstance(base, str):
            raise ConfigError(f"expected a file name or a list of them, got {base!r}", str(path), BASE_KEY)
        merged = deep_merge(merged, read_yaml(path.parent / base, origins, (*_chain, resolved)))
    if origins is not None:
        origins.update({k: str(path) for k in _flat_keys(raw)})
    return deep_merge(merged, raw)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=c"`` -> ``(["a", "b"], c as a YAML scalar)``."""
    key, sep, value = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(p.strip() for p in parts):
        raise ConfigError(f"bad override {text!r}: expected KEY=VALUE, e.g. trainer.lr=1e-4", OVERRIDE_SOURCE)
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return [p.strip() for p in parts], _yaml_number(parsed)


def _yaml_number(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; a string that is a float literal becomes the float."""
    if isinstance(value, str) and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+", value):
        return float(value)
    return value


def apply_overrides(tree: dict, overrides: Iterable[str], origins: dict[str, str] | None = None) -> dict:
    """A copy of ``tree`` with each ``KEY=VALUE`` set (intermediate mappings are created)."""
    out = deep_merge({}, tree)
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for i, k in enumerate(keys[:-1]):
            child = node.get(k)
            if child is None:
                child = node[k] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"bad override {text!r}: {'.'.join(keys[:i + 1])} is not a mapping", OVERRIDE_SOURCE)
            else:
                child = node[k] = dict(child)
            node = child
        node[keys[-1]] = value
        if origins is not None:
            origins.update({".".join(keys[:i + 1]): OVERRIDE_SOURCE for i in range(len(keys))})
    return out


def _lookup(tree: Mapping, dotted: str) -> Any:
    node: Any = tree
    for k in dotted.split("."):
        if not isinstance(node, Mapping) or k not in node:
            raise KeyError(dotted)
        node = node[k]
    return node


def interpolate(tree: dict, source: str | None = None) -> dict:
    """Fill ``${key}`` references in string values with the (scalar) value of ``key`` in ``tree``."""

    def fill(value: Any, key: str) -> Any:
        if isinstance(value, dict):
            return {k: fill(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v, f"{key}[{i}]") for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value

        def one(match: re.Match) -> str:
            try:
                ref = _lookup(tree, match.group(1))
            except KeyError:
                raise ConfigError(f"${{{match.group(1)}}} names no key of the config", source, key) from None
            if ref is None or isinstance(ref, (dict, list)) or (isinstance(ref, str) and "${" in ref):
                raise ConfigError(f"${{{match.group(1)}}} must name a plain scalar, got {ref!r}", source, key)
            return str(ref)

        return _REF.sub(one, value)

    return fill(tree, "")


# ----------------------------------------------------------------------------- typed conversion


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if value is not None else "null"


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


class _Converter:
    """Turns a plain YAML tree into typed values; ``source``/``origins`` only shape the error messages."""

    def __init__(self, source: str | None, origins: Mapping[str, str]) -> None:
        self.source, self.origins = source, origins

    def error(self, message: str, key: str) -> ConfigError:
        top = key.split("[")[0]
        while top and top not in self.origins and "." in top:
            top = top.rsplit(".", 1)[0]
        return ConfigError(message, self.origins.get(top, self.source), key or None)

    def dataclass(self, cls: type, data: Any, key: str) -> Any:
        if not isinstance(data, Mapping):
            raise self.error(f"expected a mapping of {cls.__name__} fields, got {_describe(data)}", key)
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        sub = (key + ".") if key else ""
        for name in data:
            if name not in fields:
                close = difflib.get_close_matches(str(name), list(fields), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(fields))}"
                raise self.error(f"unknown field of {cls.__name__}{hint}", f"{sub}{name}")
        kwargs = {}
        for name, f in fields.items():
            if name in data:
                kwargs[name] = self.value(hints[name], data[name], f"{sub}{name}")
                choices = f.metadata.get("choices")
                if choices is not None and kwargs[name] not in choices and kwargs[name] is not None:
                    raise self.error(f"expected one of {', '.join(map(str, choices))}; got {kwargs[name]!r}", f"{sub}{name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise self.error(f"missing required key (a {_type_name(hints[name])})", f"{sub}{name}")
        try:
            return cls(**kwargs)
        except ConfigError as err:
            if err.source is not None:
                raise
            raise self.error(err.message, ".".join(p for p in (key, err.key) if p)) from None
        except (ValueError, TypeError) as err:
            raise self.error(str(err), key) from None

    def value(self, tp: Any, value: Any, key: str) -> Any:
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if tp is Any or tp is object:
            return value
        if origin in (typing.Union, types.UnionType):
            if value is None and type(None) in args:
                return None
            options = [a for a in args if a is not type(None)]
            for option in options:
                try:
                    return self.value(option, value, key)
                except ConfigError:
                    continue
            raise self.error(f"expected {' or '.join(_type_name(a) for a in options)}, got {_describe(value)}", key)
        if value is None:
            raise self.error(f"expected {_type_name(tp)}, got null", key)
        if origin is typing.Literal:
            if value not in args:
                raise self.error(f"expected one of {', '.join(map(repr, args))}; got {value!r}", key)
            return value
        if dataclasses.is_dataclass(tp):
            return self.dataclass(tp, value, key)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            try:
                return tp(value)
            except ValueError:
                raise self.error(f"expected one of {', '.join(str(m.value) for m in tp)}; got {value!r}", key) from None
        if origin in (tuple, list) or tp in (tuple, list):
            if not isinstance(value, (list, tuple)):
                raise self.error(f"expected a list, got {_describe(value)}", key)
            if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
                if len(value) != len(args):
                    raise self.error(f"expected {len(args)} items, got {len(value)}", key)
                return tuple(self.value(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
            item = args[0] if args else Any
            items = [self.value(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
            return tuple(items) if (origin or tp) is tuple else items
        if origin is dict or tp is dict:
            if not isinstance(value, Mapping):
                raise self.error(f"expected a mapping, got {_describe(value)}", key)
            vt = args[1] if args else Any
            return {k: self.value(vt, v, f"{key}.{k}") for k, v in value.items()}
        return self.scalar(tp, value, key)

    def scalar(self, tp: Any, value: Any, key: str) -> Any:
        if tp is bool:
            ok = isinstance(value, bool)
        elif tp is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif tp is float:
            value = _yaml_number(value)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        elif tp is str:
            ok = isinstance(value, str)
        elif tp is Path:
            ok = isinstance(value, (str, Path))
            value = Path(value) if ok else value
        else:
            ok = isinstance(value, tp)
        if not ok:
            raise self.error(f"expected {_type_name(tp)}, got {_describe(value)}", key)
        return value


def from_dict(cls: type[T], data: Mapping[str, Any], source: str | None = None, key: str = "",
              origins: Mapping[str, str] | None = None) -> T:
    """An instance of dataclass ``cls`` from a plain mapping, checked (``source``/``key`` name it in errors)."""
    return _Converter(source, origins or {}).dataclass(cls, data, key)


def check_fields(cls: type, data: Mapping[str, Any] | None, key: str, source: str | None = None,
                 exclude: Iterable[str] = ()) -> dict[str, Any]:
    """A partial set of ``cls``'s fields (e.g. a ``trainer:`` mapping completed later), typed and checked.

    Unknown names and wrong types raise :class:`ConfigError`; fields left out stay out (``exclude``: names
    that are filled in by the program, never by the file)."""
    data = dict(data or {})
    conv = _Converter(source, {})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in set(exclude)]
    out = {}
    for name, value in data.items():
        if name not in names:
            close = difflib.get_close_matches(str(name), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(names))}"
            raise conv.error(f"unknown field of {cls.__name__}{hint}", f"{key}.{name}")
        out[name] = conv.value(hints[name], value, f"{key}.{name}")
    return out


# ----------------------------------------------------------------------------- public entry points


def load_config(cls: type[T], path: str | Path | None = None, overrides: Iterable[str] = (),
                values: Mapping[str, Any] | None = None) -> T:
    """Dataclass ``cls`` from the YAML file ``path`` (with its bases), then ``values`` (a mapping merged in,
    e.g. a CLI's typed flags), then ``overrides`` (``KEY=VALUE`` strings)."""
    origins: dict[str, str] = {}
    tree: dict = {}
    source = str(path) if path is not None else None
    if path is not None:
        tree = read_yaml(path, origins)
    if values:
        tree = deep_merge(tree, values)
        origins.update({k: "arguments" for k in _flat_keys(values)})
    tree = apply_overrides(tree, overrides, origins)
    tree = interpolate(tree, source)
    return _Converter(source, origins).dataclass(cls, tree, "")


def to_dict(obj: Any) -> Any:
    """A plain YAML/JSON-able tree of a config: dataclasses -> dicts, enums -> values, tuples -> lists, Paths -> str."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dump(obj: Any, path: str | Path | None = None, extra: Mapping[str, Any] | None = None) -> str:
    """YAML of ``to_dict(obj)`` (plus ``extra`` keys, e.g. the run dir); written to ``path`` when given."""
    text = yaml.safe_dump({**to_dict(obj), **to_dict(dict(extra or {}))}, sort_keys=False)
    if path is not None:
        Path(path).write_text(text)
    return text


def add_config_args(parser: argparse.ArgumentParser, required: bool = True, default: str | Path | None = None,
                    help: str = "YAML config file") -> None:
    """``--config FILE`` and repeatable ``--set KEY=VALUE`` (into ``args.config`` and ``args.overrides``)."""
    parser.add_argument("--config", required=required and default is None, default=default, help=help)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value after the files, e.g. --set trainer.lr=1e-4 (repeatable)")


def exit_on_config_error(main: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator of a CLI's ``main``: a :class:`ConfigError` ends it with its one-line message on stderr
    (``error: <file>: <key>: ...``, exit status 2) instead of a traceback."""

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper


def existing_path(value: str | Path, key: str, source: str | None = None, hint: str | None = None) -> Path:
    """``Path(value)`` if it exists, else a :class:`ConfigError` naming the key and the path (and ``hint``)."""
    path = Path(value)
    if not path.exists():
        raise ConfigError(f"{path} does not exist" + (f"; {hint}" if hint else ""), source, key)
    return path


def find_producer(cls: type[T], directory: str | Path, produces: Callable[[T], bool],
                  overrides: Sequence[str] = ()) -> Path | None:
    """The first YAML file in ``directory`` that loads as ``cls`` (with ``overrides``) and ``produces`` says yes to."""
    for candidate in sorted(Path(directory).glob("*.yaml")):
        try:
            cfg = load_config(cls, candidate, overrides)
        except ConfigError:
            continue
        if produces(cfg):
            return candidate
    return None


def check_run_path(value: str | Path | None, key: str, config_path: str | Path, cls: type,
                   overrides: Sequence[str] = ()) -> None:
    """Refuse a config value naming a path that is not there (``trainer.init_from: runs/...`` in a fresh clone).

    The error names the key, the path, and the recipe beside ``config_path`` whose run writes it (a run's
    default folder is ``runs/<name>``), loaded as ``cls`` with ``overrides`` (e.g. the same ``variant=``)."""
    if not value or Path(value).exists():
        return
    target = Path(value)
    producer = find_producer(cls, Path(config_path).parent, lambda c: Path("runs", c.name) == target, overrides)
    hint = "a run writes it, and none has been made here"
    if producer is not None:
        hint = f"train the recipe that produces it first: --config {producer}" + "".join(f" --set {o}" for o in overrides)
    existing_path(value, key, str(config_path), hint)
