"""Population-based training: the decisions (plain, seeded) and the driver that carries them out."""
