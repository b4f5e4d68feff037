# Environment for running vega_ros here (sourced by the Makefile scripts and the tests).
# - FastDDS as the RMW (the PyPI wheels ship it);
# - DDS discovery on loopback only unless the caller chose otherwise;
# - offscreen MuJoCo through EGL (Mesa on CPU machines, the driver on GPU machines).
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
export MUJOCO_GL=${MUJOCO_GL:-egl}
export PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-$MUJOCO_GL}
