"""distill: offline training (WAN 2.1 teacher features, the 3D probe, the student, the policy)."""
