"""A fake OpenTelemetry Collector: the OTLP/HTTP traces endpoint, protobuf in, spans kept.

The service's real OTLP exporter posts to it over HTTP, as it would to a Collector or Jaeger.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.http_server import BackgroundServer

STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    error: bool
    service: str


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(x) for x in v.array_value.values)
    return getattr(v, kind) if kind else None


class FakeCollector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []
        app = Starlette(routes=[Route("/v1/traces", self._export, methods=["POST"])])
        self.server = BackgroundServer(app)

    @property
    def endpoint(self) -> str:
        return self.server.url

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    async def _export(self, request: Request) -> Response:
        body = ExportTraceServiceRequest.FromString(await request.body())
        received = []
        for resource_spans in body.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            name=s.name,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_span_id=s.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in s.attributes},
                            error=s.status.code == STATUS_ERROR,
                            service=str(resource.get("service.name", "")),
                        )
                    )
        with self._lock:
            self._spans.extend(received)
        return Response(
            ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf"
        )
