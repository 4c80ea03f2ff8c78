"""Socket.IO server and the post-commit publisher of events."""
