"""Versioned schemas of the PostgreSQL and Cassandra stores, and their runner."""
