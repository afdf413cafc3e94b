"""Which models exist on this machine and what they are."""
