"""distill.config: base chains, deep merge, overrides, ${key} references, every error kind and its message, dump -> load."""

import argparse
import dataclasses
import enum
import json
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest

from distill.config import (
    ConfigError,
    add_config_args,
    check_run_path,
    dump,
    existing_path,
    exit_on_config_error,
    from_dict,
    load_config,
    parse_override,
    to_dict,
)

ROOT = Path(__file__).resolve().parents[1]


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


@dataclasses.dataclass
class Optim:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: Literal["cosine", "linear"] = "cosine"


@dataclasses.dataclass
class Run:
    name: str
    steps: int = 10
    optim: Optim = dataclasses.field(default_factory=Optim)
    tags: list[str] = dataclasses.field(default_factory=list)
    extra: dict[str, int] = dataclasses.field(default_factory=dict)
    mode: Mode = Mode.FAST
    seed: int | None = None
    split: str = dataclasses.field(default="train", metadata={"choices": ("train", "val")})
    out: Path = Path("out")

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_base_chain_merges_mappings_deeply_and_the_nearest_file_wins(tmp_path):
    _write(tmp_path / "a.yaml", "name: a\nsteps: 5\noptim: {lr: 0.1, betas: [0.5, 0.6]}\ntags: [x, y]\nextra: {p: 1, q: 2}\n")
    _write(tmp_path / "sub" / "b.yaml", "base: ../a.yaml\noptim: {lr: 0.2}\nextra: {q: 3}\n")
    c = _write(tmp_path / "sub" / "c.yaml", "base: b.yaml\nname: c\ntags: [z]\n")
    cfg = load_config(Run, c)
    assert cfg == Run(name="c", steps=5, optim=Optim(lr=0.2, betas=(0.5, 0.6)), tags=["z"], extra={"p": 1, "q": 3})


def test_several_bases_merge_in_order(tmp_path):
    _write(tmp_path / "one.yaml", "name: one\nsteps: 1\n")
    _write(tmp_path / "two.yaml", "steps: 2\nseed: 7\n")
    cfg = load_config(Run, _write(tmp_path / "run.yaml", "base: [one.yaml, two.yaml]\n"))
    assert (cfg.name, cfg.steps, cfg.seed) == ("one", 2, 7)


def test_overrides_apply_after_the_files_and_parse_as_yaml_scalars(tmp_path):
    path = _write(tmp_path / "run.yaml", "name: r\noptim: {lr: 0.1}\n")
    cfg = load_config(Run, path, ["optim.lr=1e-4", "steps=3", "tags=[a, b]", "seed=null", "mode=slow", "extra.k=4",
                                  "optim.betas=[0.1, 0.2]", "out=runs/x"])
    assert cfg.optim.lr == 1e-4 and isinstance(cfg.optim.lr, float) and cfg.steps == 3 and cfg.tags == ["a", "b"]
    assert cfg.seed is None and cfg.mode is Mode.SLOW and cfg.extra == {"k": 4} and cfg.optim.betas == (0.1, 0.2)
    assert cfg.out == Path("runs/x")
    assert parse_override("a.b = c d") == (["a", "b"], "c d")
    assert parse_override("x=") == (["x"], None)


def test_references_are_filled_after_the_overrides(tmp_path):
    path = _write(tmp_path / "run.yaml", "split: val\nsteps: 10\nname: run-${split}\ntags: ['${split}', '${steps}x']\n")
    plain = load_config(Run, path)
    assert plain.name == "run-val" and plain.tags == ["val", "10x"]
    cfg = load_config(Run, path, ["split=train", "steps=4"])
    assert cfg.name == "run-train" and cfg.tags == ["train", "4x"]
    with pytest.raises(ConfigError, match=r"bad.yaml: name: \$\{nope\} names no key of the config$"):
        load_config(Run, _write(tmp_path / "bad.yaml", "name: run-${nope}\n"))
    with pytest.raises(ConfigError, match=r"bad.yaml: name: \$\{optim\} must name a plain scalar"):
        load_config(Run, _write(tmp_path / "bad.yaml", "optim: {lr: 1}\nname: run-${optim}\n"))


def _error(tmp_path, text: str, overrides=()) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(Run, _write(tmp_path / "run.yaml", text), overrides)
    return str(err.value)


def test_each_error_kind_names_the_file_and_the_dotted_key(tmp_path):
    f = tmp_path / "run.yaml"
    assert _error(tmp_path, "steps: 3\n") == f"{f}: name: missing required key (a str)"
    assert _error(tmp_path, "name: r\noptim: {lr: fast}\n") == f"{f}: optim.lr: expected float, got str 'fast'"
    assert _error(tmp_path, "name: r\nsteps: 2.5\n") == f"{f}: steps: expected int, got float 2.5"
    assert _error(tmp_path, "name: r\noptim: {lrr: 1}\n") == f"{f}: optim.lrr: unknown field of Optim; did you mean 'lr'?"
    assert _error(tmp_path, "name: r\nzzz: 1\n").startswith(f"{f}: zzz: unknown field of Run; known: extra, mode, name")
    assert _error(tmp_path, "name: r\nmode: medium\n") == f"{f}: mode: expected one of fast, slow; got 'medium'"
    assert _error(tmp_path, "name: r\nsplit: test\n") == f"{f}: split: expected one of train, val; got 'test'"
    assert _error(tmp_path, "name: r\noptim: {schedule: step}\n") == (
        f"{f}: optim.schedule: expected one of 'cosine', 'linear'; got 'step'")
    assert _error(tmp_path, "name: r\noptim: {betas: [1]}\n") == f"{f}: optim.betas: expected 2 items, got 1"
    assert _error(tmp_path, "name: r\ntags: [a, 3]\n") == f"{f}: tags[1]: expected str, got int 3"
    assert _error(tmp_path, "name: r\nseed: x\n") == f"{f}: seed: expected int, got str 'x'"
    assert _error(tmp_path, "name: r\nsteps: 0\n") == f"{f}: steps must be >= 1, got 0"  # the dataclass's own check
    assert _error(tmp_path, "- 1\n") == f"{f}: expected a mapping at the top level, got list"
    assert _error(tmp_path, "name: r\n", ["steps"]) == "--set: bad override 'steps': expected KEY=VALUE, e.g. trainer.lr=1e-4"
    assert _error(tmp_path, "name: r\n", ["a..b=1"]).startswith("--set: bad override 'a..b=1'")
    assert _error(tmp_path, "name: r\n", ["steps=many"]) == "--set: steps: expected int, got str 'many'"
    assert _error(tmp_path, "name: r\n", ["name.x=1"]) == "--set: bad override 'name.x=1': name is not a mapping"
    assert _error(tmp_path, "base: gone.yaml\nname: r\n") == f"{f}: base: config file {tmp_path / 'gone.yaml'} does not exist"
    with pytest.raises(ConfigError, match="config file nowhere.yaml does not exist"):
        load_config(Run, "nowhere.yaml")


def test_an_error_names_the_base_file_that_set_the_bad_value(tmp_path):
    base = _write(tmp_path / "base.yaml", "optim: {lr: fast}\n")
    path = _write(tmp_path / "run.yaml", "base: base.yaml\nname: r\n")
    with pytest.raises(ConfigError, match=rf"^{base}: optim.lr: expected float, got str 'fast'$"):
        load_config(Run, path)


def test_a_base_cycle_is_refused_with_the_chain(tmp_path):
    _write(tmp_path / "a.yaml", "base: b.yaml\nname: a\n")
    _write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match=r"b.yaml: base: base files form a cycle: .*a.yaml -> .*b.yaml -> .*a.yaml"):
        load_config(Run, tmp_path / "a.yaml")
    _write(tmp_path / "self.yaml", "base: self.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(Run, tmp_path / "self.yaml")


def test_dump_then_load_gives_the_same_config(tmp_path):
    cfg = Run(name="r", steps=3, optim=Optim(lr=2e-4, betas=(0.8, 0.9), schedule="linear"), tags=["a"], extra={"k": 1},
              mode=Mode.SLOW, seed=4, split="val", out=Path("runs/r"))
    text = dump(cfg, tmp_path / "config.yaml")
    assert (tmp_path / "config.yaml").read_text() == text
    assert load_config(Run, tmp_path / "config.yaml") == cfg
    assert json.loads(json.dumps(to_dict(cfg)))["optim"]["betas"] == [0.8, 0.9]  # plain lists, enum values
    assert from_dict(Run, to_dict(cfg)) == cfg
    with_extra = dump(cfg, extra={"run_dir": "runs/r"})
    assert "run_dir: runs/r" in with_extra


def test_float_literals_that_yaml_reads_as_strings_are_floats(tmp_path):
    assert load_config(Run, _write(tmp_path / "r.yaml", "name: r\noptim: {lr: 3e-4}\n")).optim.lr == 3e-4


def test_argparse_helper_collects_config_and_repeated_sets():
    parser = argparse.ArgumentParser()
    add_config_args(parser)
    args = parser.parse_args(["--config", "c.yaml", "--set", "a=1", "--set", "b.c=x"])
    assert args.config == "c.yaml" and args.overrides == ["a=1", "b.c=x"]
    optional = argparse.ArgumentParser()
    add_config_args(optional, required=False)
    assert optional.parse_args([]).config is None and optional.parse_args([]).overrides == []


def test_a_missing_path_names_the_key_the_path_and_the_recipe_that_produces_it(tmp_path):
    assert existing_path(tmp_path, "data.root") == tmp_path
    with pytest.raises(ConfigError, match=r"^c.yaml: data.root: /no/such does not exist; render it first$"):
        existing_path("/no/such", "data.root", "c.yaml", hint="render it first")
    _write(tmp_path / "first.yaml", "name: first\n")
    later = _write(tmp_path / "later.yaml", "name: later\n")
    with pytest.raises(ConfigError) as err:
        check_run_path("runs/first", "trainer.init_from", later, Run)
    assert str(err.value) == (f"{later}: trainer.init_from: runs/first does not exist; "
                              f"train the recipe that produces it first: --config {tmp_path / 'first.yaml'}")
    with pytest.raises(ConfigError, match="a run writes it, and none has been made here"):
        check_run_path("runs/unknown", "trainer.init_from", later, Run)
    check_run_path(str(tmp_path), "trainer.init_from", later, Run)  # present: no error
    check_run_path(None, "trainer.init_from", later, Run)


def test_a_cli_ends_on_a_config_error_with_its_message_and_status_2(tmp_path, capsys):
    @exit_on_config_error
    def main(argv):
        parser = argparse.ArgumentParser()
        add_config_args(parser)
        args = parser.parse_args(argv)
        return load_config(Run, args.config, args.overrides)

    path = _write(tmp_path / "run.yaml", "name: r\n")
    assert main(["--config", str(path), "--set", "steps=4"]).steps == 4
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(path), "--set", "optim.lr=fast"])
    assert exit_.value.code == 2 and capsys.readouterr().err == "error: --set: optim.lr: expected float, got str 'fast'\n"


def test_the_loader_imports_no_torch():
    code = "import sys, distill.config; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
