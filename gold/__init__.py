"""BeaZap gold package."""
