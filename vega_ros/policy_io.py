"""What a policy receives and returns, the same on a robot (the policy node) and in simulation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

ACTION_DIM = 7
"""OSC_POSE deltas (dx, dy, dz, droll, dpitch, dyaw) in [-1, 1] (scaled by the controller to
±5 cm and ±0.5 rad per step) and the gripper command (-1 open, +1 closed)."""


@dataclass
class PolicyInputs:
    """What a policy sees at one step."""

    agentview: np.ndarray | None  # [H, W, 3] uint8 RGB, top row first; None on a step the cameras were not rendered
    wrist: np.ndarray | None  # [H, W, 3] uint8 RGB, top row first; None likewise
    proprio: np.ndarray  # [ROBOT_STATE_DIM] float32, layout vega_ros.proprio.ROBOT_STATE_LAYOUT (raw; each policy encodes it)


class Policy(Protocol):
    def reset(self, instruction: str) -> None:
        """Start an episode of the task described by ``instruction``."""

    def act(self, inputs: PolicyInputs) -> np.ndarray:
        """The next action, ``[ACTION_DIM]`` float32."""

    def needs_images(self) -> bool:
        """Whether the next :meth:`act` reads the camera images. The evaluator renders the cameras
        only for the steps where this is True (a chunking policy reads them once per chunk)."""


class NoOpPolicy:
    """Holds still with the gripper open: the floor of any success table, and a protocol check."""

    def reset(self, instruction: str) -> None:
        self.instruction = instruction

    def act(self, inputs: PolicyInputs) -> np.ndarray:
        return np.array([0, 0, 0, 0, 0, 0, -1], np.float32)

    def needs_images(self) -> bool:
        return False


def check_action(action: np.ndarray) -> np.ndarray:
    """Validate a policy's action: shape [7], finite; returns it clipped to [-1, 1] as float64."""
    a = np.asarray(action, dtype=np.float64).reshape(-1)
    if a.shape != (ACTION_DIM,):
        raise ValueError(f"policy returned an action of shape {np.shape(action)}, expected ({ACTION_DIM},)")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"policy returned a non-finite action {a}")
    return np.clip(a, -1.0, 1.0)
