"""Generated from proto/chatmesh/v1 by scripts/gen-proto; do not edit."""
