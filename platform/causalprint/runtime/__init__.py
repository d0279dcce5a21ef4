"""Process-level runtime helpers (Ray start-up, threading)."""
