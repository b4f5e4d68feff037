"""LIBERO / LIBERO-PRO closed-loop evaluation of exported artifacts in MuJoCo (no torch): protocol,
rollouts, reports, paired comparisons and the archive of evaluation records.

Outside the robot runtime: it needs the simulator, a robot does not. It imports ``vega_ros`` (the
policy contract, the ONNX policy), never the other way round."""
