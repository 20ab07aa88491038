"""A minimal OpenTelemetry collector for tests: the real OTLP/gRPC TraceService on loopback, keeping every span
it is sent, so a test can assert what a real exporter delivered."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans: list[dict] = []
        self._lock = threading.Lock()
        self.server: grpc.Server | None = None
        self.port = 0

    def Export(self, request, context):  # noqa: N802 - the gRPC method's name
        with self._lock:
            for rs in request.resource_spans:
                service = next((a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), "")
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        self.spans.append({
                            "name": s.name, "service": service, "scope": ss.scope.name,
                            "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                            "parent_id": s.parent_span_id.hex(),
                            "attributes": {a.key: _value(a.value) for a in s.attributes},
                        })
        return trace_service_pb2.ExportTraceServiceResponse()

    def start(self) -> "Collector":
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=None)

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.spans)


def _value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None
