"""GET /metrics: the API's Prometheus metrics (`metrics.edge`, `metrics.state`).

Open like /healthz: Prometheus scrapes without credentials. The figures are
aggregates with no ids in them, but they are the business's volumes: keep the
path to the internal network at the proxy in front of the API.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client.exposition import choose_encoder

from api.auth.caller import PUBLIC

router = APIRouter(tags=["metrics"], dependencies=[Depends(PUBLIC)])


@router.get("/metrics", include_in_schema=False)
def read_metrics(request: Request) -> Response:
    """The app's registry in the format the scraper asks for (OpenMetrics or text).
    A plain function: FastAPI runs it in a thread, so the state gauges' database read
    never holds up the event loop."""
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(request.app.state.metrics.registry), media_type=content_type)
