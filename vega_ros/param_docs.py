"""Parameter tables of the nodes, generated from their settings dataclasses, and the README blocks that hold them.

Every node parameter is declared once, as a field of a frozen settings dataclass
(``vega_ros.settings.param``). This module turns each class into a markdown table (parameter,
ROS type, default, range or choices, description) and rewrites the README's blocks between
``<!-- BEGIN params:<node> -->`` and ``<!-- END params:<node> -->``:

    python -m vega_ros.param_docs                      # print every table
    python -m vega_ros.param_docs --write README.md docs/parameters.md   # rewrite the blocks in place
    python -m vega_ros.param_docs --check README.md docs/parameters.md   # exit 1 on drift, 2 on a bad block
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path

BLOCK_PREFIX = "params:"
_BEGIN = re.compile(r"<!-- BEGIN (params:\S+) -->")
_ROS_TYPES = {"str": "string", "int": "integer", "float": "double", "bool": "bool", "tuple[str, ...]": "string[]"}


def node_settings() -> dict[str, type]:
    """Executable name -> settings class, for every node of the package (imported here: no torch)."""
    from vega_ros.policy_node import PolicySettings
    from vega_ros.settings import PerceptionSettings, SimCameraSettings

    return {"perception_node": PerceptionSettings, "policy_node": PolicySettings, "sim_camera_node": SimCameraSettings}


def _type_name(f: dataclasses.Field) -> str:
    annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    if annotation not in _ROS_TYPES:
        raise ValueError(f"parameter '{f.name}': no ROS type for the annotation {annotation!r} (known: {', '.join(_ROS_TYPES)})")
    return _ROS_TYPES[annotation]


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return str(v)


def _bound(v: float, type_name: str) -> str:
    return str(int(v)) if type_name == "integer" else f"{float(v):g}"


def _range(f: dataclasses.Field, type_name: str) -> str:
    choices = f.metadata.get("choices", ())
    if choices:
        return ", ".join(f"`{c}`" for c in choices)
    lo, hi = f.metadata.get("range", (None, None))
    if lo is not None and hi is not None:
        return f"{_bound(lo, type_name)} … {_bound(hi, type_name)}"
    if lo is not None:
        return f"≥ {_bound(lo, type_name)}"
    if hi is not None:
        return f"≤ {_bound(hi, type_name)}"
    return ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_table(cls: type, prefix: str = "") -> str:
    """The markdown table of one settings dataclass: one row per field (``prefix + name``), in declaration order."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a settings dataclass")
    rows = ["| parameter | type | default | range / choices | description |", "|---|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if "description" not in f.metadata:
            raise ValueError(f"{cls.__name__}.{f.name} has no description: declare it with settings.param(...)")
        t = _type_name(f)
        rows.append(f"| `{prefix}{f.name}` | {t} | `{_value(f.default)}` | {_cell(_range(f, t))} | {_cell(f.metadata['description'])} |")
    return "\n".join(rows)


def nested_settings() -> dict[str, tuple[str, type]]:
    """Block name suffix ``<node>.<group>`` -> (parameter prefix, settings class) of the settings a node
    declares under a prefix (``declare_settings(node, cls, prefix)``)."""
    from vega_ros.odometry.settings import PARAMETER_PREFIX, OdometrySettings

    return {"perception_node.odometry": (PARAMETER_PREFIX, OdometrySettings)}


def tables() -> dict[str, str]:
    """Block name (``params:<node>``, ``params:<node>.<group>``) -> generated table, for every node and group."""
    out = {f"{BLOCK_PREFIX}{node}": settings_table(cls) for node, cls in node_settings().items()}
    out.update({f"{BLOCK_PREFIX}{name}": settings_table(cls, prefix) for name, (prefix, cls) in nested_settings().items()})
    return out


def _block_pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- BEGIN {re.escape(name)} -->\n)(.*?)(<!-- END {re.escape(name)} -->)", re.S)


def block_names(text: str) -> list[str]:
    """Names of the ``params:`` blocks opened in ``text``, in order."""
    return _BEGIN.findall(text)


def read_block(text: str, name: str, source: str = "the document") -> str:
    """The text between the BEGIN/END markers of block ``name`` (without the marker lines' newlines)."""
    matches = _block_pattern(name).findall(text)
    if len(matches) != 1 or block_names(text).count(name) != 1:
        raise ValueError(f"{source} has {len(matches)} complete '<!-- BEGIN {name} -->' … '<!-- END {name} -->' blocks, expected exactly 1")
    return matches[0][1].rstrip("\n")


def _known(text: str, generated: dict[str, str], source: str) -> list[str]:
    names = block_names(text)
    unknown = [n for n in names if n not in generated]
    if unknown:
        raise ValueError(f"{source}: no node named {', '.join(n.removeprefix(BLOCK_PREFIX) for n in unknown)} "
                         f"(nodes: {', '.join(n.removeprefix(BLOCK_PREFIX) for n in generated)})")
    return names


def render(text: str, generated: dict[str, str], source: str = "the document") -> str:
    """``text`` with the content of each of its ``params:`` blocks replaced by the generated table."""
    for name in _known(text, generated, source):
        read_block(text, name, source)
        text = _block_pattern(name).sub(lambda m, c=generated[name]: m.group(1) + c + "\n" + m.group(3), text)
    return text


def drifted(path: Path, generated: dict[str, str] | None = None) -> list[str]:
    """Names of the ``params:`` blocks of the markdown file ``path`` that differ from the code (empty = up to date)."""
    generated = tables() if generated is None else generated
    text = path.read_text()
    return [n for n in _known(text, generated, str(path)) if read_block(text, n, str(path)) != generated[n]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vega_ros.param_docs", description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--write", type=Path, nargs="+", metavar="MD", help="rewrite the params blocks of these markdown files")
    mode.add_argument("--check", type=Path, nargs="+", metavar="MD", help="exit 1 when a params block of these files differs from the code")
    args = ap.parse_args(argv)
    generated = tables()
    try:
        for path in args.write or ():
            path.write_text(render(path.read_text(), generated, str(path)))
        stale = [(path, name) for path in args.check or () for name in drifted(path, generated)]
    except (OSError, ValueError) as e:
        print(f"param_docs: {e}", file=sys.stderr)
        return 2
    for path, name in stale:
        print(f"{path}: block '{name}' differs from the code; run: python -m vega_ros.param_docs --write {path}", file=sys.stderr)
    if not (args.write or args.check):
        for name, table in generated.items():
            print(f"### {name.removeprefix(BLOCK_PREFIX)}\n\n{table}\n")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
