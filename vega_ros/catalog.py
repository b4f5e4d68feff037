"""The model catalog: ``models/catalog.json`` lists every artifact that ships, and those that left the tree.

One entry per shipped artifact (``models/<name>/``)::

    {"name", "kind": "student" | "policy" | "sentence_encoder", "purpose", "input", "size_bytes",
     "per_frame_ms": {"value": ms | null, "command", "note"},
     "abs_rel": {"value", "command", "note"} (students; null for the others),
     "success": {"successes", "episodes", "suite", "note", "commands": [...]} (policies; null for the others),
     "files": {file name: sha256 hex}}

and one per archived variant: ``{"name", "kind", "commit", "restore", "note"}``, where ``restore``
is ``git checkout <commit> -- models/<name>`` (the commit that last held it is its release location).

The catalog is JSON so that ``setup.py`` can read it with the standard library alone: pip builds
``setup.py`` in an isolated environment that has no PyYAML. This module is standard library only
too (the runtime side: no torch). Errors name the catalog file and the field, or the artifact file.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from enum import Enum
from typing import Any, TextIO

from vega_ros.artifact import CARD_FILE, DEFAULT_MODEL, ArtifactError, sha256_file

CATALOG_FILE = "catalog.json"
CATALOG_FORMAT_VERSION = 1
MODELS_DIR = "models"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")


class CatalogError(ArtifactError):
    """The catalog is missing or malformed, or names no such model."""


class ArchivedModelError(CatalogError):
    """The model left the tree; the message says which commit holds it and how to restore it."""


class Kind(str, Enum):
    STUDENT = "student"
    POLICY = "policy"
    SENTENCE_ENCODER = "sentence_encoder"  # the policies' instruction encoder (vega_ros.language)


@dataclass(frozen=True)
class Measurement:
    """One measured number (or ``None`` with the reason in ``note``) and the command that measured it."""

    value: float | None
    command: str | None
    note: str


@dataclass(frozen=True)
class Success:
    """Held-out closed-loop success of a policy: ``successes`` of ``episodes`` on ``suite``."""

    successes: int
    episodes: int
    suite: str
    note: str
    commands: tuple[str, ...]

    @property
    def rate(self) -> float:
        return self.successes / self.episodes


@dataclass(frozen=True)
class CatalogEntry:
    """A shipped artifact."""

    name: str
    kind: Kind
    purpose: str
    input: str
    size_bytes: int
    per_frame_ms: Measurement
    abs_rel: Measurement | None  # students
    success: Success | None  # policies
    files: dict[str, str]  # file name -> sha256 hex


@dataclass(frozen=True)
class ArchivedEntry:
    """A variant that left the tree: ``git checkout <commit> -- models/<name>`` brings it back."""

    name: str
    kind: Kind
    commit: str
    restore: str
    note: str


@dataclass(frozen=True)
class Catalog:
    path: str  # the catalog file; its folder holds the artifacts
    models: tuple[CatalogEntry, ...]
    archived: tuple[ArchivedEntry, ...]

    @property
    def root(self) -> str:
        return os.path.dirname(os.path.abspath(self.path))

    @property
    def total_bytes(self) -> int:
        return sum(e.size_bytes for e in self.models)

    def entry(self, name: str) -> CatalogEntry:
        """The shipped entry ``name``; an archived name raises :class:`ArchivedModelError` with the restore command."""
        for e in self.models:
            if e.name == name:
                return e
        for a in self.archived:
            if a.name == name:
                raise ArchivedModelError(
                    f"model '{name}' left the tree (archived in {self.path}); it lives in git commit {a.commit}. "
                    f"Restore it from the repository root with: {a.restore}")
        raise CatalogError(f"{self.path}: no model named '{name}'; shipped: {', '.join(e.name for e in self.models)}")

    def model_dir(self, name: str) -> str:
        return os.path.join(self.root, self.entry(name).name)

    def installed_files(self) -> list[str]:
        """Paths relative to the repository root, ``models/<name>/<file>``, catalog first: what setup.py installs."""
        out = [f"{MODELS_DIR}/{CATALOG_FILE}"]
        for e in self.models:
            out += [f"{MODELS_DIR}/{e.name}/{f}" for f in sorted(e.files)]
        return out


# ----------------------------------------------------------------------------- parsing


def _field(d: dict, key: str, kind: type | tuple[type, ...], where: str, nullable: bool = False) -> Any:
    if key not in d:
        raise CatalogError(f"{where}: missing field '{key}'")
    value = d[key]
    if value is None and nullable:
        return None
    ok = isinstance(value, kind) and not (isinstance(value, bool) and kind in (int, float, (int, float)))
    if not ok:
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise CatalogError(f"{where}: field '{key}' must be {names}{' or null' if nullable else ''}, "
                           f"got {type(value).__name__} {value!r}")
    return value


def _text(d: dict, key: str, where: str) -> str:
    value = _field(d, key, str, where)
    if not value.strip():
        raise CatalogError(f"{where}: field '{key}' is empty")
    return value


def _known_fields(d: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise CatalogError(f"{where}: unknown field(s) {unknown}; allowed: {sorted(allowed)}")


def _measurement(d: dict, where: str) -> Measurement:
    _known_fields(d, {"value", "command", "note"}, where)
    value = _field(d, "value", (int, float), where, nullable=True)
    command = _field(d, "command", str, where, nullable=True)
    note = _field(d, "note", str, where)
    if value is None and not note.strip():
        raise CatalogError(f"{where}: 'value' is null, so 'note' must say why")
    if value is not None and not (command and command.strip()):
        raise CatalogError(f"{where}: a measured 'value' needs the 'command' that measured it")
    if value is not None and value < 0:
        raise CatalogError(f"{where}: 'value' must be >= 0, got {value}")
    return Measurement(None if value is None else float(value), command, note)


def _success(d: dict, where: str) -> Success:
    _known_fields(d, {"successes", "episodes", "suite", "note", "commands"}, where)
    successes, episodes = _field(d, "successes", int, where), _field(d, "episodes", int, where)
    if episodes <= 0 or not 0 <= successes <= episodes:
        raise CatalogError(f"{where}: need 0 <= successes <= episodes and episodes > 0, got {successes}/{episodes}")
    commands = _field(d, "commands", list, where)
    if not commands or not all(isinstance(c, str) and c.strip() for c in commands):
        raise CatalogError(f"{where}: 'commands' must list the command(s) that measured the success")
    return Success(successes, episodes, _text(d, "suite", where), _field(d, "note", str, where), tuple(commands))


def _kind(d: dict, where: str) -> Kind:
    value = _field(d, "kind", str, where)
    try:
        return Kind(value)
    except ValueError:
        raise CatalogError(f"{where}: field 'kind' must be one of {[k.value for k in Kind]}, got {value!r}") from None


def _name(d: dict, where: str) -> str:
    name = _field(d, "name", str, where)
    if not _NAME.match(name):
        raise CatalogError(f"{where}: field 'name' must be a plain folder name (a-z, 0-9, '.', '_', '-'), got {name!r}")
    return name


_ENTRY_FIELDS = {"name", "kind", "purpose", "input", "size_bytes", "per_frame_ms", "abs_rel", "success", "files"}


def _entry(d: Any, where: str) -> CatalogEntry:
    if not isinstance(d, dict):
        raise CatalogError(f"{where}: must be an object, got {type(d).__name__}")
    name = _name(d, where)
    where = f"{where} ('{name}')"
    _known_fields(d, _ENTRY_FIELDS, where)
    kind = _kind(d, where)
    size = _field(d, "size_bytes", int, where)
    if size <= 0:
        raise CatalogError(f"{where}: field 'size_bytes' must be > 0, got {size}")
    files = _field(d, "files", dict, where)
    if not files:
        raise CatalogError(f"{where}: field 'files' lists no files")
    for fname, digest in files.items():
        if not _NAME.match(fname.lower()) or fname in (".", ".."):
            raise CatalogError(f"{where}: files: {fname!r} must be a plain file name inside models/{name}/")
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise CatalogError(f"{where}: files: '{fname}' needs a sha256 of 64 lower-case hex digits, got {digest!r}")
    abs_rel = _field(d, "abs_rel", dict, where, nullable=True)
    success = _field(d, "success", dict, where, nullable=True)
    if kind is Kind.STUDENT and (abs_rel is None or success is not None):
        raise CatalogError(f"{where}: a student gives 'abs_rel' (value or null with a note) and 'success': null")
    if kind is Kind.POLICY and (success is None or abs_rel is not None):
        raise CatalogError(f"{where}: a policy gives 'success' and 'abs_rel': null")
    if kind is Kind.SENTENCE_ENCODER and (success is not None or abs_rel is not None):
        raise CatalogError(f"{where}: a sentence encoder gives 'abs_rel': null and 'success': null")
    return CatalogEntry(
        name=name, kind=kind, purpose=_text(d, "purpose", where), input=_text(d, "input", where), size_bytes=size,
        per_frame_ms=_measurement(_field(d, "per_frame_ms", dict, where), f"{where} per_frame_ms"),
        abs_rel=None if abs_rel is None else _measurement(abs_rel, f"{where} abs_rel"),
        success=None if success is None else _success(success, f"{where} success"),
        files=dict(files),
    )


def _archived(d: Any, where: str) -> ArchivedEntry:
    if not isinstance(d, dict):
        raise CatalogError(f"{where}: must be an object, got {type(d).__name__}")
    name = _name(d, where)
    where = f"{where} ('{name}')"
    _known_fields(d, {"name", "kind", "commit", "restore", "note"}, where)
    commit = _field(d, "commit", str, where)
    if not _HEX40.match(commit):
        raise CatalogError(f"{where}: field 'commit' must be a full git commit (40 hex digits), got {commit!r}")
    restore = _field(d, "restore", str, where)
    want = f"git checkout {commit} -- {MODELS_DIR}/{name}"
    if restore != want:
        raise CatalogError(f"{where}: field 'restore' must be {want!r}, got {restore!r}")
    return ArchivedEntry(name, _kind(d, where), commit, restore, _field(d, "note", str, where))


def parse_catalog(data: Any, path: str) -> Catalog:
    """Validate a catalog dict (as read from ``path``) and return a :class:`Catalog`."""
    if not isinstance(data, dict):
        raise CatalogError(f"{path}: top level must be an object")
    _known_fields(data, {"format_version", "models", "archived"}, path)
    version = _field(data, "format_version", int, path)
    if version != CATALOG_FORMAT_VERSION:
        raise CatalogError(f"{path}: format_version {version} is not supported (this reader reads {CATALOG_FORMAT_VERSION})")
    models = _field(data, "models", list, path)
    if not models:
        raise CatalogError(f"{path}: 'models' lists no artifact")
    entries = tuple(_entry(m, f"{path} models[{i}]") for i, m in enumerate(models))
    archived = tuple(_archived(a, f"{path} archived[{i}]") for i, a in enumerate(_field(data, "archived", list, path)))
    seen: set[str] = set()
    for n in [e.name for e in entries] + [a.name for a in archived]:
        if n in seen:
            raise CatalogError(f"{path}: model '{n}' is listed twice")
        seen.add(n)
    return Catalog(path=path, models=entries, archived=archived)


def load_catalog(path: str | None = None) -> Catalog:
    """Read and validate the catalog (default: the one :func:`find_catalog` finds)."""
    path = path or find_catalog()
    if not os.path.isfile(path):
        raise CatalogError(f"{path}: no such catalog file")
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise CatalogError(f"{path}: not valid JSON ({e})") from e
    return parse_catalog(data, path)


def models_roots() -> list[str]:
    """Where models may live, in order: next to the source tree, ``<prefix>/share`` (pip), the ament share (colcon)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    roots = [os.path.join(here, MODELS_DIR), os.path.join(sys.prefix, "share", "vega_ros", MODELS_DIR)]
    try:
        from ament_index_python.packages import get_package_share_directory

        roots.append(os.path.join(get_package_share_directory("vega_ros"), MODELS_DIR))
    except (ImportError, LookupError, OSError):  # not installed as a ROS package
        pass
    return roots


def find_catalog() -> str:
    roots = models_roots()
    for r in roots:
        if os.path.isfile(os.path.join(r, CATALOG_FILE)):
            return os.path.join(r, CATALOG_FILE)
    raise CatalogError(f"no {CATALOG_FILE} found; looked in {', '.join(roots)}")


def resolve_model_dir(name: str, catalog: Catalog | None = None) -> str:
    """The directory of model ``name``: a catalog entry, or an unlisted artifact folder beside them (a local export).

    An archived name raises :class:`ArchivedModelError` (which commit holds it, how to restore it);
    a name that is neither listed nor on disk raises :class:`CatalogError` naming the shipped ones.
    """
    catalog = catalog or load_catalog()
    try:
        return catalog.model_dir(name)
    except ArchivedModelError:
        raise
    except CatalogError:
        local = os.path.join(catalog.root, name)
        if _NAME.match(name) and os.path.isfile(os.path.join(local, CARD_FILE)):
            return local
        raise


def archived_hint(model_dir: str) -> str:
    """For an error about a missing ``model_dir``: how to restore it if its name is archived in the catalog, else ''."""
    try:
        catalog = load_catalog()
    except CatalogError:
        return ""
    name = os.path.basename(os.path.normpath(model_dir))
    for a in catalog.archived:
        if a.name == name:
            return f"; '{name}' left the tree (commit {a.commit[:12]} holds it): restore it with {a.restore}"
    return ""


# ----------------------------------------------------------------------------- verification


def verify_entry(entry: CatalogEntry, root: str) -> None:
    """Raise :class:`ArtifactError` naming the file if a listed file is missing or its sha256 or the total size differs."""
    model_dir = os.path.join(root, entry.name)
    total = 0
    for fname, want in sorted(entry.files.items()):
        path = os.path.join(model_dir, fname)
        if not os.path.isfile(path):
            raise ArtifactError(f"{path}: listed in the catalog but missing")
        got = sha256_file(path)
        if got != want:
            raise ArtifactError(f"{path}: sha256 {got[:12]}... does not match the catalog's {want[:12]}... "
                                "(file changed or catalog stale)")
        total += os.path.getsize(path)
    if total != entry.size_bytes:
        raise ArtifactError(f"{model_dir}: files total {total} bytes, the catalog says size_bytes {entry.size_bytes}")


def verify_catalog(catalog: Catalog) -> None:
    for e in catalog.models:
        verify_entry(e, catalog.root)


# ----------------------------------------------------------------------------- tables


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _score(e: CatalogEntry) -> str:
    if e.success is not None:
        s = e.success
        return f"{s.successes}/{s.episodes} ({100 * s.rate:.1f} %) {s.suite}"
    if e.abs_rel is not None and e.abs_rel.value is not None:
        return f"{e.abs_rel.value:.3f}"
    return "–"


def model_table_markdown(catalog: Catalog | None = None) -> str:
    """The README model table: one row per shipped artifact, from the catalog."""
    catalog = catalog or load_catalog()
    rows = ["| name | size | input | per-frame ms | AbsRel / success | what it is for |", "|---|---|---|---|---|---|"]
    for e in catalog.models:
        name = f"`{e.name}`" + (" (default)" if e.name == DEFAULT_MODEL else "")
        ms = "–" if e.per_frame_ms.value is None else f"{e.per_frame_ms.value:.0f}"
        if e.kind is Kind.POLICY and e.per_frame_ms.value is not None:
            ms += " per prediction"  # once per executed chunk, not every control step
        cells = [name, _size(e.size_bytes), e.input, ms, _score(e), e.purpose]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


def run_models_command(verify: bool = False, out: TextIO | None = None) -> int:
    """``vega-ros models [--verify]``: the table, the archived variants; with ``verify``, every sha256. Returns the exit code."""
    out = out or sys.stdout
    try:
        catalog = load_catalog()
        print(model_table_markdown(catalog), file=out)
        print(f"{len(catalog.models)} artifacts, {_size(catalog.total_bytes)} in {catalog.root}", file=out)
        if catalog.archived:
            print(f"archived ({len(catalog.archived)}; restore from the repository root):", file=out)
            for a in catalog.archived:
                print(f"  {a.name:<28} {a.restore}", file=out)
        if verify:
            verify_catalog(catalog)
            n = sum(len(e.files) for e in catalog.models)
            print(f"verified: sha256 and size of {n} files match {catalog.path}", file=out)
    except ArtifactError as e:
        print(f"vega-ros models: {e}", file=sys.stderr)
        return 2
    return 0
