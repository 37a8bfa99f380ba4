"""The session service: which gateway holds each device's connection (Redis)."""
