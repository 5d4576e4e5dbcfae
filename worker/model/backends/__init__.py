"""Inference backends: what runs a version's network. One interface (:class:`~.base.Backend`); the runtime
(:mod:`worker.model.runtime`) owns tokenising, chunking and label decisions and is given a backend."""
