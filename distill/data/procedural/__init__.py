"""Procedural MuJoCo scenes (rooms, tables, LIBERO objects, robosuite arms) rendered into clips with exact depth.

``python -m distill.data.procedural.render --config config/data/procedural.yaml --out DIR``; the
output has the LIBERO renderer's shard + index format, so ``DIR`` is a data spec as it stands.
"""
