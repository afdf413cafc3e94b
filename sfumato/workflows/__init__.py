"""ComfyUI graphs on sfumato's engine: nodes, validation, running, saved workflows."""
