"""distill.eval_depth on a rendered-format dataset whose truth is known relative to the model's own output."""

import json

import numpy as np
import pytest

from distill.data.shards import FORMAT, ShardError, atomic_write_json, write_shard
from distill.eval_depth import ArtifactDepth, EvalSet, bootstrap_interval, main


@pytest.fixture(scope="module")
def tiny_v2(tmp_path_factory):
    """A random-weight per-frame artifact of the tiny preset (format version 2)."""
    from distill.export import export_artifact_v2
    from distill.nets.models.frame_student import build_frame_student, frame_card_fields

    student = build_frame_student("tiny", seed=1).eval()
    out = tmp_path_factory.mktemp("art") / "tiny-v2"
    fields = frame_card_fields(student)
    fields["training"] = {**fields["training"], "random_init": True}
    export_artifact_v2(student, str(out), name="tiny-v2", card_fields=fields)
    return out


def write_dataset(root, rgb, depth, K, split="test"):
    """One shard of clips ``rgb [C, T, H, W, 3]``, ``depth [C, T, H, W]`` + an index, as the renderers write."""
    clips = [{"rgb": r, "depth": d, "K": K, "T_wc": np.tile(np.eye(4), (len(r), 1, 1))} for r, d in zip(rgb, depth)]
    metas = [{"clip_id": f"{split}-{i}"} for i in range(len(clips))]
    write_shard(root / "shard_000.npz", clips, metas, depth_unit_m=0.0002)
    rows = [{"clip_id": m["clip_id"], "split": split, "shard": "shard_000.npz", "slot": i} for i, m in enumerate(metas)]
    atomic_write_json(root / "index.json", {"format": FORMAT, "clips": rows})


def test_known_scale_error_reads_half_metric_and_zero_median_scaled(tiny_v2, tmp_path):
    model = ArtifactDepth(str(tiny_v2), threads=1)
    h, w = model.hw
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (3, 5, h, w, 3), dtype=np.uint8)
    K = np.tile(np.array([[0.9 * w, 0, w / 2], [0, 0.9 * h, h / 2], [0, 0, 1.0]]), (5, 1, 1))
    pred = np.stack([model(c, K)[0] for c in rgb])
    model.close()
    write_dataset(tmp_path, rgb, 2.0 * pred, K)  # truth = twice the prediction: AbsRel 0.5, δ1 0 as predicted
    out = tmp_path / "eval"
    assert main(["--model", str(tiny_v2), "--eval", f"t={tmp_path}:test", "--threads", "1", "--out", str(out),
                 "--frames-per-clip", "3", "--no-progress", "--write-card"]) == 0
    r = json.loads((out / "eval.json").read_text())["sets"]["t"]
    assert (r["clips"], r["frames"], r["skipped_empty"]) == (3, 9, 0)
    assert r["abs_rel"] == pytest.approx(0.5, abs=2e-3) and r["delta1"] == 0.0
    assert r["abs_rel_median_scaled"] < 2e-3 and r["delta1_median_scaled"] == 1.0
    assert (out / "t.png").is_file()
    card = json.loads((tiny_v2 / "card.json").read_text())
    assert card["eval"]["t"]["abs_rel"] == r["abs_rel"] and card["eval"]["command"].startswith("python -m distill.eval_depth")
    from vega_ros.artifact import load_artifact

    assert load_artifact(str(tiny_v2)).card.eval["t"]["clips"] == 3  # the card still loads


def test_bad_inputs_get_clear_errors(tiny_v2, tmp_path):
    with pytest.raises(ValueError, match="NAME=DIR:SPLIT"):
        EvalSet.parse("no-equals-sign")
    with pytest.raises(SystemExit):
        main(["--model", str(tiny_v2), "--eval", f"t={tmp_path / 'missing'}:test"])
    h, w = 64, 64
    write_dataset(tmp_path, np.zeros((1, 2, h, w, 3), np.uint8), np.zeros((1, 2, h, w), np.float32),
                  np.tile(np.eye(3), (2, 1, 1)))
    with pytest.raises(ShardError, match="no clip with valid depth"):
        main(["--model", str(tiny_v2), "--eval", f"t={tmp_path}:test", "--threads", "1", "--no-progress"])
    with pytest.raises(ShardError, match="no clips in split 'val'"):
        main(["--model", str(tiny_v2), "--eval", f"t={tmp_path}:val", "--threads", "1", "--no-progress"])


def test_bootstrap_interval_brackets_the_mean():
    values = np.random.default_rng(1).normal(0.3, 0.05, 200)
    lo, hi = bootstrap_interval(values)
    assert lo < values.mean() < hi and hi - lo < 0.03
    assert np.isnan(bootstrap_interval(np.array([1.0]))[0])
