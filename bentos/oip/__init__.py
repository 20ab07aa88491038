"""KServe Open Inference Protocol v2 gRPC server for the log scorer (see ``server`` and README.md)."""
