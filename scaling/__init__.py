"""Capacity policies, the trace-replay simulator, cost models, trace readers and forecasting.

Pure and dependency-free of the rest of llmfn: nothing here imports another llmfn package.
"""
