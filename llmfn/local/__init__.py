"""The local runtime behind ``llmfn dev``: a gateway on 127.0.0.1 in front of worker processes.

Runs on a laptop, never deployed: the workers it spawns run the deployed ``functions.serve``.

``config`` (validated settings), ``worker`` (one supervised ``python -m functions.serve`` process),
``pool`` (reserved / on-demand workers, quota, leasing, reaping), ``autoscaler`` (a ``scaling``
policy ticked against the pool), ``gateway`` (routing, proxying, status, metrics), ``runner``,
``client`` / ``loadgen`` / ``prediction`` (``llmfn load``), ``tiny_model`` (the embedded default model).
"""
