"""The domain: plain async functions taking a session first. No FastAPI, no Socket.IO here."""
