"""WAN 2.1 DIFT teacher features and their cache (see README.md in this folder)."""
