"""Image metadata: what we write into every picture, and (later) what we read from others'."""
