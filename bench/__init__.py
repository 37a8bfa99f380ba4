"""Benchmarks that run the real system on loopback and print JSON."""
