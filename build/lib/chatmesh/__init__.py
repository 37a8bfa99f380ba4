"""Shared runtime of the chatmesh services: ids, settings, auth, errors, frames, gRPC serving."""
