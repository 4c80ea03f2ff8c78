"""The live dashboard at /dashboard: server-rendered pages, a cookie session with CSRF
tokens, and one shared feed of aggregates pushed to browsers by Server-Sent Events."""
