"""LIBERO closed-loop evaluation of exported artifacts (no torch): protocol, rollouts, reports."""
