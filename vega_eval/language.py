"""The instructions of LIBERO suites, and how well reworded ones find the task they reword.

LIBERO-PRO's ``*_lan`` suites keep each scene and goal of a standard suite and reword its
instruction ("pick up the black bowl next to the ramekin and place it on the plate" becomes "take
black bowl next to ramekin and place on plate"). A policy knows the embeddings of the instructions
it was trained on; :func:`match_report` embeds every instruction of a perturbed suite with the
sentence encoder and asks whether the nearest known instruction is the one of the same task in the
standard suite — the condition for ``language_mode=nearest`` to run the right skill.

    vega-ros libero-language --policy models/bc-fused-brisk-ft --encoder models/minilm-l6-v2-int8 \
        --suite libero_spatial_lan --out docs/libero/language_spatial_lan.json
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vega_ros.language import SentenceEncoder, nearest


def suite_instructions(suite: str) -> list[str]:
    """The instruction of each task of ``suite``, in task order, as its BDDL file states it
    (``:language``, what a rollout's policy hears; see ``vega_eval.rollout.scene_instruction``)."""
    from vega_eval.rollout import bddl_instruction, installed_suites, unknown_suite_message

    suites = installed_suites()
    if suite not in suites:
        raise ValueError(unknown_suite_message(suite))
    bench = suites[suite]()
    out = []
    for t in range(bench.n_tasks):
        try:
            out.append(bddl_instruction(bench.get_task_bddl_file_path(t)))
        except ValueError as e:  # a BDDL file that does not parse: name it
            raise ValueError(f"{suite} task {t}: {e}") from e
    return out


def match_report(perturbed: list[str], reference: list[str], known: dict[str, np.ndarray],
                 encoder: SentenceEncoder) -> dict[str, Any]:
    """Per task ``t``: the nearest of ``known`` (instruction -> embedding) to ``perturbed[t]``, and
    whether it is ``reference[t]`` (the standard suite's instruction of the same task).

    Returns ``{"tasks": [...], "correct": int, "tasks_n": int}``; each task row has the sentence,
    the expected and matched instructions, the cosine and the margin over the runner-up."""
    if len(perturbed) != len(reference):
        raise ValueError(f"{len(perturbed)} perturbed instructions against {len(reference)} reference ones")
    missing = [r for r in reference if r not in known]
    if missing:
        raise ValueError(f"the policy does not know the reference instructions {missing[:3]}")
    rows = []
    for t, (sentence, expected, vector) in enumerate(zip(perturbed, reference, encoder.embed(perturbed))):
        match, cos, margin = nearest(vector, known)
        rows.append({"task": t, "instruction": sentence, "expected": expected, "matched": match,
                     "correct": match == expected, "cosine": round(cos, 4), "margin": round(margin, 4),
                     "known_verbatim": sentence in known})
    return {"tasks": rows, "correct": sum(r["correct"] for r in rows), "tasks_n": len(rows)}


__all__ = ["match_report", "suite_instructions"]
