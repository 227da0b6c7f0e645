"""``llmfn promote``: move a new model revision into production behind the alias, step by step.

- :mod:`functions.promote.stack`: which function / alias / endpoint a stack name means (stack outputs).
- :mod:`functions.promote.gates`: the checks between steps (error rate, P95, an HTTP smoke request).
- :mod:`functions.promote.promotion`: the resumable promotion itself and its JSON report.
"""
