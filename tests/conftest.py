"""Test-session environment: FastDDS on loopback, a private ROS domain per run (and per pytest-xdist
worker), EGL for MuJoCo."""

import os
import sys
import zlib


def _private_domain_id() -> int:
    """A ROS domain (1..100) of this test process's own, so concurrent runs on one machine don't see each other.

    Under pytest-xdist each worker is a process of its own with nodes of its own: the workers of one
    run get distinct domains (a block of ``PYTEST_XDIST_WORKER_COUNT`` consecutive ids chosen by the
    run's shared uid, the worker's index inside it), so no test sees another worker's topics.
    Subprocesses (nodes, launches, peers) inherit the variable from ``os.environ``.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return 1 + os.getpid() % 100
    index = int(worker[2:])
    count = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), index + 1)
    if count > 100:
        raise RuntimeError(f"{count} xdist workers: more than the 100 private ROS domains")
    block = zlib.crc32(os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getppid())).encode()) % (100 // count)
    return 1 + block * count + index


if os.environ.get("PYTEST_XDIST_WORKER"):
    # Not setdefault: a worker inherits the controller's environment, whose conftest already set one.
    os.environ["ROS_DOMAIN_ID"] = str(_private_domain_id())
else:
    os.environ.setdefault("ROS_DOMAIN_ID", str(_private_domain_id()))
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
    """The tiny LIBERO render (config/data/tiny.yaml), made once per test session with the real renderer.

    Under pytest-xdist the workers share one render: the first to ask makes it in the run's common
    temporary folder under an exclusive lock, the others wait for it and read the finished folder
    (the tests only read it; those that change a render copy it first).
    """
    import fcntl
    from pathlib import Path

    from distill.data.config import load_config
    from distill.data.render import run

    def render(out):
        run(load_config(Path(ROOT) / "config" / "data" / "tiny.yaml"), out, workers=1, progress=False)

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        out = tmp_path_factory.mktemp("libero_tiny")
        render(out)
        return out
    shared = tmp_path_factory.getbasetemp().parent  # the run's folder, common to its workers
    out, done = shared / "libero_tiny", shared / "libero_tiny.done"
    with open(shared / "libero_tiny.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done.exists():
                if out.exists():  # a worker that failed half-way: start over
                    import shutil

                    shutil.rmtree(out)
                out.mkdir()
                render(out)
                done.touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return out


@pytest.fixture
def torch_one_thread():
    """One torch intra-op thread for the test (restored after), whatever the caller's OMP setting."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
