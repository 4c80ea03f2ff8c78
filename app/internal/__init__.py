"""@internal jobs: server-side extensions run by taskiq (in-process, or `jobserver worker`)."""
