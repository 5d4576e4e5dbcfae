"""The worker service: stages (reader, admit, batcher, score, publisher) connected by bounded queues, one
back-pressure owner (:mod:`.flow`), one readiness source (:mod:`.health`), model reload, HTTP probes and metrics;
:mod:`.worker` wires them. Built on :mod:`worker.model` and :mod:`worker.streams`; knows nothing of the tools."""
