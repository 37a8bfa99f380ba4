"""The presence service: online status and last seen from batched heartbeats (Redis)."""
