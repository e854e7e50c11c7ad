"""BeaZap api package."""
