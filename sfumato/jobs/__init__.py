"""Jobs: the queue in the database, the worker that runs it, and the events it sends."""
