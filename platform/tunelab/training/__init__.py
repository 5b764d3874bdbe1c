"""Plain PyTorch training of one trial, and its thin Ray Tune adapter."""
