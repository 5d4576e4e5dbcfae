"""The worker service: its lifecycle (:mod:`.worker`), reader, scorer, batcher, publisher, model reload,
HTTP probes and metrics. Built on :mod:`worker.model` and :mod:`worker.streams`; knows nothing of the tools."""
