"""Real-time engine: sessions, audio window, clock, scheduler (issue 6)."""
