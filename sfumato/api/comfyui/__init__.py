"""ComfyUI's HTTP and WebSocket protocol (``api/routes/comfyui.py``): its answers' shapes,
the file names ComfyUI clients give uploads, and the ``/ws`` socket."""
