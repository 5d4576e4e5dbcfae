"""Every Redis command of livetopic: the worker's stream client and its server-side scripts, the producer,
and the one retry policy. Redis errors are mapped here into :mod:`worker.errors`' tree."""
