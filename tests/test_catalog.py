"""models/catalog.json: what ships, with sha256 that match the files, what setup.py installs, what left the tree."""

import copy
import json
import os
import shutil
import subprocess

import pytest

from vega_ros import artifact
from vega_ros.catalog import (
    CATALOG_FILE,
    ArchivedModelError,
    CatalogError,
    Kind,
    load_catalog,
    model_table_markdown,
    parse_catalog,
    resolve_model_dir,
    verify_catalog,
    verify_entry,
)
from vega_ros.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "models")
CATALOG = os.path.join(MODELS, CATALOG_FILE)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(CATALOG)


@pytest.fixture
def raw():
    with open(CATALOG) as f:
        return json.load(f)


def _tracked_model_folders() -> list[str]:
    """Folders under models/ that git tracks (local exports beside them are not in the tree); all folders outside git."""
    ls = subprocess.run(["git", "-C", ROOT, "ls-files", "models"], capture_output=True, text=True)
    if ls.returncode != 0:
        return sorted(d for d in os.listdir(MODELS) if os.path.isdir(os.path.join(MODELS, d)))
    return sorted({p.split("/")[1] for p in ls.stdout.splitlines() if p.count("/") >= 2})


def test_the_catalog_lists_exactly_the_folders_in_models_and_each_kind_matches_its_card(catalog):
    folders = _tracked_model_folders()
    assert sorted(e.name for e in catalog.models) == folders
    assert artifact.DEFAULT_MODEL in folders and "vega-random-tiny" in folders
    for e in catalog.models:
        card = "policy_card.json" if e.kind is Kind.POLICY else "card.json"
        assert card in e.files, e.name
        with open(os.path.join(MODELS, e.name, card)) as f:
            listed = json.load(f)["files"]
        for name, digest in listed.items():  # the card and the catalog agree on every file the card lists
            assert e.files[name] == digest, (e.name, name)
        assert (e.abs_rel is not None) == (e.kind is Kind.STUDENT) and (e.success is not None) == (e.kind is Kind.POLICY)


def test_every_policy_names_an_encoder_that_ships(catalog):
    names = {e.name for e in catalog.models}
    for e in catalog.models:
        if e.kind is Kind.POLICY:
            with open(os.path.join(MODELS, e.name, "policy_card.json")) as f:
                encoder = json.load(f)["encoder"]
            assert not encoder or encoder["name"] in names, (e.name, encoder)


def test_sha256_and_sizes_match_the_files(catalog):
    verify_catalog(catalog)
    assert catalog.total_bytes == sum(os.path.getsize(os.path.join(MODELS, p.split("/", 1)[1]))
                                      for p in catalog.installed_files()[1:])


def test_a_tampered_or_missing_file_is_refused_with_its_path(catalog, tmp_path):
    entry = catalog.entry("vega-random-tiny")
    shutil.copytree(os.path.join(MODELS, entry.name), tmp_path / entry.name)
    verify_entry(entry, str(tmp_path))
    target = tmp_path / entry.name / "heads.onnx"
    with open(target, "ab") as f:
        f.write(b"\0")
    with pytest.raises(artifact.ArtifactError, match=f"{target}: sha256 .* does not match the catalog"):
        verify_entry(entry, str(tmp_path))
    target.unlink()
    with pytest.raises(artifact.ArtifactError, match=f"{target}: listed in the catalog but missing"):
        verify_entry(entry, str(tmp_path))


def test_setup_py_installs_exactly_the_catalog_files_under_share(catalog, monkeypatch):
    from distutils.core import run_setup  # setuptools' distutils (its .pth puts it first); "init" stops after reading the arguments

    monkeypatch.chdir(ROOT)
    dist = run_setup("setup.py", stop_after="init")
    installed = [(dst, f) for dst, files in dist.data_files for f in files if f.startswith("models/")]
    assert sorted(f for _, f in installed) == sorted(catalog.installed_files())
    for dst, f in installed:  # share/vega_ros/models/<name>/<file>, as default_model_dir looks for them
        assert os.path.join(dst, os.path.basename(f)) == os.path.join("share", "vega_ros", f)


def test_an_archived_name_says_it_left_the_tree_and_how_to_restore_it(catalog, monkeypatch):
    archived = {a.name: a for a in catalog.archived}
    assert len(archived) == 15 and "bc-fused-long" in archived
    monkeypatch.setenv("VEGA_MODEL", "bc-fused-long")
    a = archived["bc-fused-long"]
    with pytest.raises(ArchivedModelError, match="left the tree") as e:
        artifact.default_model_dir()
    assert f"git checkout {a.commit} -- models/bc-fused-long" in str(e.value)


def test_loading_an_archived_folder_by_path_gives_the_restore_command(catalog):
    from vega_ros.policy_runtime import OnnxPolicy, PolicyArtifactError

    a = {a.name: a for a in catalog.archived}["bc-semantic-only-xl"]
    with pytest.raises(PolicyArtifactError, match="left the tree") as e:
        OnnxPolicy(os.path.join(MODELS, a.name))
    assert a.restore in str(e.value)
    with pytest.raises(artifact.ArtifactError, match=f"does not exist; 'bc-fused' left the tree .*{catalog.archived[0].restore}"):
        artifact.load_artifact(os.path.join(MODELS, "bc-fused"))
    with pytest.raises(artifact.ArtifactError, match="'.*never-shipped' does not exist$"):
        artifact.load_artifact(os.path.join(MODELS, "never-shipped"))


def test_each_archived_commit_holds_its_folder(catalog):
    """The restore commands work: each commit's tree has the variant's policy card (skipped outside a git checkout)."""
    probe = subprocess.run(["git", "-C", ROOT, "rev-parse", "--git-dir"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("not a git checkout")
    for a in catalog.archived:
        held = subprocess.run(["git", "-C", ROOT, "cat-file", "-e", f"{a.commit}:models/{a.name}/policy_card.json"])
        assert held.returncode == 0, f"{a.commit} does not hold models/{a.name}"


def test_names_resolve_to_their_folders_and_an_unknown_one_lists_the_shipped(catalog, monkeypatch):
    monkeypatch.delenv("VEGA_MODEL", raising=False)
    assert artifact.default_model_dir() == os.path.join(MODELS, artifact.DEFAULT_MODEL)
    monkeypatch.setenv("VEGA_MODEL", "vega-random-tiny")
    assert artifact.load_artifact(artifact.default_model_dir()).card.random_init
    with pytest.raises(CatalogError, match="no model named 'nope'; shipped: vega-frame-v2, vega-sim-vit-ti"):
        resolve_model_dir("nope", catalog)


def test_an_unlisted_local_export_beside_the_catalog_still_resolves(raw, tmp_path):
    (tmp_path / CATALOG_FILE).write_text(json.dumps(raw))
    (tmp_path / "my-export").mkdir()
    (tmp_path / "my-export" / "card.json").write_text("{}")
    local = load_catalog(str(tmp_path / CATALOG_FILE))
    assert resolve_model_dir("my-export", local) == str(tmp_path / "my-export")


def _break(raw: dict, edit) -> dict:
    bad = copy.deepcopy(raw)
    edit(bad)
    return bad


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["models"][0].pop("files"), r"models\[0\] \('vega-frame-v2'\): missing field 'files'"),
    (lambda d: d["models"][1].update(kind="teacher"), r"models\[1\] .*field 'kind' must be one of"),
    (lambda d: d["models"][0]["files"].update({"frame.onnx": "abc"}), r"files: 'frame.onnx' needs a sha256"),
    (lambda d: d["models"][0].update(size_bytes="31 MB"), r"field 'size_bytes' must be int"),
    (lambda d: d["models"][2]["per_frame_ms"].update(value=None, note=""), r"per_frame_ms: 'value' is null, so 'note' must say why"),
    (lambda d: d["models"][0]["abs_rel"].update(command=None), r"abs_rel: a measured 'value' needs the 'command'"),
    (lambda d: d["models"][4].update(success=None), r"a policy gives 'success'"),
    (lambda d: d["models"][4]["success"].update(successes=601), r"0 <= successes <= episodes"),
    (lambda d: d["models"][0].update(sha256="x"), r"unknown field\(s\) \['sha256'\]"),
    (lambda d: d["archived"][0].update(restore="git checkout HEAD -- models/bc-fused"), r"archived\[0\] \('bc-fused'\): field 'restore' must be"),
    (lambda d: d["archived"][0].update(commit="02a0565"), r"field 'commit' must be a full git commit"),
    (lambda d: d["archived"].append(dict(d["archived"][0], name="vega-sim-vit-ti",
                                         restore=d["archived"][0]["restore"].replace("bc-fused", "vega-sim-vit-ti"))),
     r"model 'vega-sim-vit-ti' is listed twice"),
    (lambda d: d.update(format_version=2), r"format_version 2 is not supported"),
])
def test_a_malformed_catalog_is_refused_naming_the_file_and_the_field(raw, edit, message):
    with pytest.raises(CatalogError, match=message) as e:
        parse_catalog(_break(raw, edit), "/x/models/catalog.json")
    assert str(e.value).startswith("/x/models/catalog.json")


def test_a_catalog_that_is_not_json_names_the_file(tmp_path):
    bad = tmp_path / CATALOG_FILE
    bad.write_text("models:\n  - vega-sim-vit-ti\n")
    with pytest.raises(CatalogError, match=f"{bad}: not valid JSON"):
        load_catalog(str(bad))


def test_the_markdown_table_has_a_row_per_model_with_its_numbers(catalog):
    lines = model_table_markdown(catalog).strip().splitlines()
    assert lines[0] == "| name | size | input | per-frame ms | AbsRel / success | what it is for |"
    rows = lines[2:]
    assert len(rows) == len(catalog.models)
    for e, row in zip(catalog.models, rows):
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert len(cells) == 6 and cells[0].startswith(f"`{e.name}`"), row
        assert cells[1] == f"{e.size_bytes / 1e6:.1f} MB"
        if e.success is not None:
            assert cells[4].startswith(f"{e.success.successes}/{e.success.episodes} ")
        elif e.abs_rel is not None and e.abs_rel.value is not None:
            assert cells[4] == f"{e.abs_rel.value:.3f}"
        else:
            assert cells[4] == "–", row
    assert sum("(default)" in r for r in rows) == 1 and f"`{artifact.DEFAULT_MODEL}` (default)" in lines[2]


def test_the_readme_models_block_is_the_catalog_table(catalog):
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    if "<!-- BEGIN models -->" not in readme:
        pytest.skip("README.md has no <!-- BEGIN models --> block")
    block = readme.split("<!-- BEGIN models -->", 1)[1].split("<!-- END models -->", 1)[0]
    assert model_table_markdown(catalog) in block, "README's models block is not the catalog's table: paste the one `vega-ros models` prints"


def test_vega_ros_models_prints_the_table_and_verifies(capsys):
    assert main(["models", "--verify"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(model_table_markdown(load_catalog()))
    assert "git checkout" in out and "verified: sha256 and size of" in out
