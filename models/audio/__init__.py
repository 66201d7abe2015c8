"""Audio front end: reading and resampling audio, streaming log-mel features."""
