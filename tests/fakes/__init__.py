"""Local stand-ins for the providers Stepmail talks to, for tests and benchmarks."""
