"""jobserver: a self-hosted job server speaking the zndraw-joblib contract."""
