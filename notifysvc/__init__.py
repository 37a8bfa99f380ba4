"""The notification service: a durable queue of push jobs for users with no live device."""
