"""Ground floor shared by every layer: settings (every default), logging with masking, identity helpers.

Nothing here imports another BeaZap package."""
