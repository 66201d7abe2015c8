"""Fast paths for the PyTorch renderer and models: reference, Triton, dispatch per op."""
