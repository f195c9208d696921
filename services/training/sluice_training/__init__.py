"""Sluice training service: training jobs as resources, run by worker processes.

The service side (`core`, `store`, `servicer`, `server`) is plain Python plus gRPC glue and never
imports Keras or TensorFlow. The worker side (`worker`, `loop`, `models`, ...) imports Keras with
the backend chosen per job; TensorFlow is imported only by the TF-specific modules (`export`,
`distributed`) and by Keras' string preprocessing layers when a model has categorical features.
"""
