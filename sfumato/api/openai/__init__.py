"""OpenAI's Images API, spoken at ``/openai/v1`` (the routes: ``api/routes/openai_images.py``):
its error shape (``errors``) and the translation of its fields onto sfumato's one request
model (``translate``)."""
