#!/usr/bin/env bash
# Issue 35's study on libero_object, libero_goal and libero_10, from nothing: per suite, 50 scripted-expert demos per
# task from sampled placements (the evaluation's fixed init states are never used), the three variants of
# config/policy/bc-<recipe>.yaml (fused, 3d-only, semantic-only: same demos, cache, encoder and budget), their
# closed-loop evaluation on 20 fixed init states per task (20..39) at two evaluation seeds (7, 8), and the
# paired comparison (exact McNemar). libero_spatial is scripts/policy_study.sh.
#
#   scripts/libero_suites.sh                                    # all three suites, all stages
#   SUITES=libero_object STAGES="demos train" scripts/libero_suites.sh
#   VARIANTS=fused EPISODES=5 SUITES=libero_goal STAGES=eval scripts/libero_suites.sh   # a quick look
#
# Every stage resumes: a recorded task is skipped (a task stopped midway is recorded again), the trainer resumes
# from runs/<name> (a finished run only re-exports), the evaluator from its journal. Outputs: data/demos_<suite>
# (~4.8 GB per suite), data/bc_cache/vega-frame-v2-<recipe> (~7.5 GB per suite), runs/, models/bc-<variant>-<recipe>,
# eval_out/<suite>-bc-<variant>-<recipe>-seed<seed> and eval_out/<suite>-compare-seed<seed>.md.
#
# Cost on a 2-core machine (measured): demos ~20 s per episode per core on libero_object (rendering two 128^2
# cameras per step is most of it), ~45 s on libero_10; training and evaluation as in docs/policy/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
source scripts/ros_env.sh

SUITES=${SUITES:-"libero_object libero_goal libero_10"}
VARIANTS=${VARIANTS:-"fused 3d-only semantic-only"}
STAGES=${STAGES:-"demos train eval"}
EPISODES=${EPISODES:-20}
SEEDS=${SEEDS:-"7 8"}
WORKERS=${WORKERS:-$(nproc)}
PY=.venv/bin/python
recipe_of() {  # the config/policy/bc-<recipe>.yaml of a suite
    case $1 in libero_object) echo object ;; libero_goal) echo goal ;; libero_10) echo libero10 ;;
        *) echo "no recipe for suite $1 (known: libero_object libero_goal libero_10)" >&2; return 1 ;; esac
}
export OMP_NUM_THREADS=1 MUJOCO_GL=${MUJOCO_GL:-egl}
for suite in $SUITES; do
    recipe=$(recipe_of "$suite")
    if [[ $STAGES == *demos* ]]; then
        $PY -m distill.policy.demos --suite "$suite" --episodes-per-task 50 --init-states sampled --seed 1000 \
            --out "data/demos_$suite" --workers "$WORKERS"
    fi
    if [[ $STAGES == *train* ]]; then
        for v in $VARIANTS; do
            $PY -m distill.policy.train --config "config/policy/bc-$recipe.yaml" --variant "$v" --encoder-threads "$WORKERS"
        done
    fi
    if [[ $STAGES == *eval* ]]; then
        for seed in $SEEDS; do
            runs=()
            for v in $VARIANTS; do
                out="eval_out/$suite-bc-$v-$recipe-seed$seed"
                .venv/bin/vega-ros libero-eval --suite "$suite" --policy "models/bc-$v-$recipe" --episodes "$EPISODES" \
                    --init-state-offset 20 --seed "$seed" --workers "$WORKERS" --out "$out"
                runs+=("$out")
            done
            if (( ${#runs[@]} > 1 )); then
                .venv/bin/vega-ros libero-compare "${runs[@]}" --names $VARIANTS --out "eval_out/$suite-compare-seed$seed.md" \
                    --plot "eval_out/$suite-compare-seed$seed.png"
            fi
        done
    fi
done
