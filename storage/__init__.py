"""BeaZap storage package."""
