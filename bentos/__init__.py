"""bentos: the BentoML services (HTTP) and the Open Inference Protocol gRPC server that serve the RCA engine."""
