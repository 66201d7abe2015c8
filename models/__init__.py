"""Models: face parameters, renderer, audio, motion and pose models."""
