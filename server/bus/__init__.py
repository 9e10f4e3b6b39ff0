"""Cross-node fan-out: small engine protocols (Broker, UserLog, Presence, SessionStore; their
composite Bus) in base.py, a memory engine (one node) and a Redis engine, side by side."""
