"""Network architectures (flax.nnx) and the checkpoint file format they are stored in."""
