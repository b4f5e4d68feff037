"""Networks, split as in VGGT: ``layers`` (attention, block, patch embed) → ``models`` (student
encoders, the probe aggregator, the weak verifier) → ``heads`` (DPT, camera, activations).

``pose_enc`` holds the torch twins of :mod:`vega_ros.geometry`'s pose encoding.
"""
