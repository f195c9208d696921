"""Sluice serving: model versions pulled from the artifact store, hot-swapped without failed
requests, dynamically batched, spoken over TF Serving's and the Open Inference Protocol's gRPC APIs,
with a sampled request log for skew detection.

The data plane (`sluice_serving.core.ServingCore`) is plain Python; the servicers are thin.
"""
