"""Multi-view 3D clip data: LIBERO renders with exact depth and poses, CO3Dv2 / DL3DV readers, clip sampling.

Modules (one job each):
- ``config``        the render configuration (a dataclass read from ``config/data/*.yaml``)
- ``scenes``        the LIBERO task catalogue, scene ids and scene-disjoint splits
- ``camera_paths``  camera trajectories (orbit, arc, random walk) in pure numpy
- ``libero_scene``  one LIBERO scene in MuJoCo: state, arm motion, cameras, RGB + non-MSAA depth
- ``offscreen``     the offscreen MuJoCo renderer (RGB pass, depth pass, empty-frame checks)
- ``clips``         one clip: state, arm jitter / scripted motion, free camera path, T frames
- ``plan``          the deterministic list of shards and clips a config asks for
- ``shards``        on-disk format: sharded ``.npz`` + ``index.json``, atomic writes, validated reads
- ``render``        the renderer CLI (``python -m distill.data.render``)
- ``reproject``     cross-view depth consistency (the validator's measure)
- ``preview``       preview image grid (RGB, depth, fused top view)
- ``check``         the validator CLI (``python -m distill.data.check``)
- ``sample``        the probe sample structure (``make_sample``) and frame selection
- ``augment``       photometric augmentation (never touches geometry)
- ``dataset``       torch ``Dataset`` over rendered shards
- ``resize``        fitting real frames to the probe size (crop + resize, K and depth kept exact)
- ``co3d``, ``dl3dv``  readers for the real datasets' on-disk layouts (scenes split by name hash)
- ``procedural/``   procedural MuJoCo scenes (rooms, tables, LIBERO objects, robosuite arms) rendered into the
                    same shards: ``assets``, ``config``, ``mjcf`` (sample + build), ``scene``, ``clips``, ``render``, ``preview``
- ``synthetic``     analytic clips (textured floor + spheres, exact depth and poses) for smoke runs
- ``sources``       the one data spec (``DIR``, ``co3d:DIR``, ``dl3dv:DIR``, ``synthetic:N``) -> clip samples
"""
