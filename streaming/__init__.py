"""WebRTC tracks, signaling and media inputs/outputs (issue 6)."""
