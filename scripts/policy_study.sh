#!/usr/bin/env bash
# The policy study of docs/policy/results.md, from nothing: the demos, the three variants of the shipped
# recipe (fused, 3d-only, semantic-only: same demos, cache, encoder and budget), and their closed-loop
# evaluation on held-out libero_spatial init states. It reproduces models/bc-<variant>-brisk-ft:
#
#   config/policy/bc-side-dart.yaml   3,000 steps from scratch on the side demos (+ their DART set)
#   config/policy/bc-side-xl.yaml     15,000 more from those weights
#   config/policy/bc-brisk-ft.yaml    4,000 more at lr 1e-4 on the brisk demos (the shipped policies)
#
# each trained once per variant (`--variant`); the shared parts are in config/policy/base.yaml.
#
#   scripts/policy_study.sh [EPISODES_PER_TASK]      # default 20 (init states 20..39 of each task)
#   VARIANTS="3d-only semantic-only" WORKERS=16 scripts/policy_study.sh 50
#   STAGES=demos scripts/policy_study.sh                 # only record the demos (stages: demos train eval)
#
# Every stage resumes: a demo set with its summary is skipped, the trainer resumes from runs/<name>
# (and a finished run only re-exports), the evaluator from its journal. Outputs: data/ (demos and
# token cache, ~4 GB), runs/, models/bc-<variant>-{side-dart,side-xl,brisk-ft},
# eval_out/libero_spatial-bc-<variant>-brisk-ft and eval_out/libero_spatial-brisk-ft-compare.md
# (per task and paired, exact McNemar). Note that the runs rewrite the shipped models/bc-<variant>-brisk-ft.
#
# Cost on a 2-core machine: demos ~1.2 h per set (rendering dominates, it scales with WORKERS; two sets:
# side and brisk), cache ~15 min, 22,000 training steps ~65 min (3d-only) to ~180 min (semantic-only;
# scaled from the 35 and 100 min measured for 12,000) per variant on the CPU, evaluation ~25 min per
# variant at 20 episodes per task.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
source scripts/ros_env.sh

EPISODES=${1:-20}
WORKERS=${WORKERS:-$(nproc)}
VARIANTS=${VARIANTS:-"fused 3d-only semantic-only"}
STAGES=${STAGES:-"demos train eval"}
STEPS="side-dart side-xl brisk-ft"   # config/policy/bc-<step>.yaml, in order: each starts from the one before
PY=.venv/bin/python
demos() {  # demos OUT [FLAGS...]: config/policy/demos.yaml's expert (one grasp side per task)
    local out=$1; shift
    if [[ -f $out/libero_spatial_summary.json ]]; then echo "[study] $out exists"; return; fi
    OMP_NUM_THREADS=1 $PY -m distill.policy.demos --config config/policy/demos.yaml \
        --out "$out" --workers "$WORKERS" "$@"
}
if [[ $STAGES == *demos* ]]; then
    for pace in side brisk; do   # side: the standard pace; brisk: carry and lower at full speed
        flags=(); [[ $pace == brisk ]] && flags=(--pace brisk)
        demos "data/demos_$pace" --episodes-per-task 12 "${flags[@]}"    # init states 0-11
        demos "data/demos_${pace}_dart" --init-states sampled --action-noise 0.3 --episodes-per-task 12 --seed 1000 "${flags[@]}"
    done
fi
if [[ $STAGES == *train* ]]; then
    for v in $VARIANTS; do
        for s in $STEPS; do
            $PY -m distill.policy.train --config "config/policy/bc-$s.yaml" --variant "$v" --encoder-threads "$(nproc)"
        done
    done
fi
if [[ $STAGES == *eval* ]]; then
    for v in $VARIANTS; do
        .venv/bin/vega-ros libero-eval --suite libero_spatial --policy "models/bc-$v-brisk-ft" --episodes "$EPISODES" \
            --init-state-offset 20 --workers "$WORKERS" --out "eval_out/libero_spatial-bc-$v-brisk-ft"
    done
    # the variants episode by episode (the first is the reference of the paired tests)
    runs=(); for v in $VARIANTS; do runs+=("eval_out/libero_spatial-bc-$v-brisk-ft"); done
    if (( ${#runs[@]} > 1 )); then
        .venv/bin/vega-ros libero-compare "${runs[@]}" --names $VARIANTS --out "eval_out/libero_spatial-brisk-ft-compare.md"
    fi
fi
