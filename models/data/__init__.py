"""The training corpus: synthetic speech with lip targets, head motion with descriptions,
real-video tracking, one record format."""
