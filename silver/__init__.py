"""BeaZap silver package."""
