"""``llmfn promote``: move a new model revision into production behind the alias, step by step.

Runs in CI or on a laptop, never deployed.

- :mod:`llmfn.release.stack`: which function / alias / endpoint a stack name means (stack outputs).
- :mod:`llmfn.release.gates`: the checks between steps (error rate, P95, an HTTP smoke request).
- :mod:`llmfn.release.promotion`: the resumable promotion itself and its JSON report.
"""
