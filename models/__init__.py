"""Sequential specifications: pure step functions. No I/O, no imports from the rest."""
