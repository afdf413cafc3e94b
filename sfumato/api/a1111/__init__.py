"""AUTOMATIC1111's ``/sdapi/v1``, translated onto sfumato's one request model: ``fields`` turns
A1111's request into a ``GenerationInput`` (and its sampler and scheduler names into
sfumato's samplers), ``answers`` turns finished jobs and the catalog into A1111's answers.
The routes are in ``sfumato/api/routes/a1111.py``."""
