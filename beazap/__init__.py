"""BeaZap core: settings, logging, identity helpers and the ``beazap`` command line."""
