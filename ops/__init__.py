"""BeaZap ops package."""
