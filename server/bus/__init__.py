"""Cross-node fan-out: one Bus interface, a memory engine (one node) and a Redis engine."""
