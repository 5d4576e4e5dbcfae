"""``make check-deploy``: the files in ``deploy/`` checked by the real tools and against the worker itself.

Run as ``python -m devtools.deploycheck [--deploy-dir deploy] [--only STEP …]``; each step prints what it
checked and every problem it found, and the exit status is 1 when any step found one. Needs the ``[deploy]``
extra (kubernetes-validate, yamllint, jsonschema) and, on PATH, ``kubectl`` and ``promtool``.
"""
