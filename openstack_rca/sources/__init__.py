"""sources: where log files come from when they are not files on this machine (pod logs through the Kubernetes
API). Each source hands the parser in-memory files (``parse.reader.RawFile``), as archive members are."""
