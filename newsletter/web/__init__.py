"""HTTP apps: the local preview server and the public endpoints (unsubscribe, archive)."""
