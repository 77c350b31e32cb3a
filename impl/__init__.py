"""Reference implementations, one package per system, each with its seeded bugs."""
