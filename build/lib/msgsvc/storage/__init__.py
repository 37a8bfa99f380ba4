"""Storage behind small interfaces: one module per backend."""
