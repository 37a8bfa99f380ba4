"""The message service: authorises, deduplicates, persists (Cassandra) and routes messages."""
