"""BeaZap orchestration package."""
