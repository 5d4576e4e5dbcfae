"""Tooling around the service: ``livetopic bench``, ``livetopic demo``, the embedded redis-server and the
worker-process helper. The runtime (``model``, ``streams``, ``service``) never imports from here."""
