"""Test-session environment: FastDDS on loopback, a private ROS domain per run, EGL for MuJoCo."""

import os
import sys

# A private DDS domain per test session, so concurrent runs on one machine don't see each other.
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("MUJOCO_GL", "egl")
# One intra-op thread: the suite's models are small, and OpenMP's spinning worker threads slow a
# 2-core machine down by an order of magnitude as soon as a second process (a DDS peer, a
# renderer) is running. Benchmarks set their own thread counts.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_libero(tmp_path_factory):
    """The tiny LIBERO render (config/data/tiny.yaml), made once per test session with the real renderer."""
    from pathlib import Path

    from distill.data.config import load_config
    from distill.data.render import run

    out = tmp_path_factory.mktemp("libero_tiny")
    run(load_config(Path(ROOT) / "config" / "data" / "tiny.yaml"), out, workers=1, progress=False)
    return out


@pytest.fixture
def torch_one_thread():
    """One torch intra-op thread for the test (restored after), whatever the caller's OMP setting."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
