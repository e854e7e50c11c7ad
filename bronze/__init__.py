"""BeaZap bronze package."""
