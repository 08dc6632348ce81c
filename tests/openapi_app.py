"""A small shop API for the OpenAPI tests, served for real by uvicorn: ``python openapi_app.py --port P --log F
--variant F``. It serves its own ``/openapi.json``, logs every request it receives to ``--log`` (one JSON line:
method, path, query, whether the bearer token matched; never the token), and checks bearer tokens against
its ``SHOP_API_TOKEN`` environment variable.

The served document depends on the first word of the ``--variant`` file, read per request, so a test can
change the API under a registered source: ``v1`` (default), ``v2`` (an operation added, one removed, one
described anew) and ``broken`` (a Swagger 2 document). Both variants drop the operationId of ``GET /items/{item_id}``, for the readable-name rule.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

TOKEN_ENV = "SHOP_API_TOKEN"
app = FastAPI(title="Shop API", version="1.0", openapi_url=None, docs_url=None, redoc_url=None)
bearer = HTTPBearer(auto_error=False)
LOG: Path | None = None
VARIANT: Path | None = None


@app.middleware("http")
async def log_requests(request: Request, call_next: Any) -> Any:
    if LOG is not None and request.url.path != "/openapi.json":
        expected = os.environ.get(TOKEN_ENV, "")
        sent = request.headers.get("authorization", "")
        line = {"method": request.method, "path": request.url.path, "query": str(request.url.query),
                "authorized": bool(expected) and sent == f"Bearer {expected}", "has_auth": bool(sent),
                "request_id": request.headers.get("x-request-id")}
        with LOG.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
    return await call_next(request)


class Order(BaseModel):
    item_id: int = Field(description="Which item to order.")
    quantity: int = Field(ge=1, le=100, description="How many units.")
    note: str | None = Field(None, description="A note for the packer.")


@app.get("/items/{item_id}", summary="Look up an item of the shop's inventory",
         description="The item's name, price and how many are in stock.")
def read_item(item_id: int, verbose: bool = False) -> dict[str, Any]:
    item = {"id": item_id, "name": f"item {item_id}", "price": 2.5, "stock": 12}
    return {**item, "verbose": True} if verbose else item


@app.post("/orders", operation_id="create_order", summary="Place an order for an item",
          description="Orders a quantity of one item and returns the order number.")
def create_order(order: Order, x_request_id: str | None = Header(None, description="A client's tracing id.")
                 ) -> dict[str, Any]:
    return {"order_id": 1000 + order.item_id, "item_id": order.item_id, "quantity": order.quantity,
            "note": order.note, "request_id": x_request_id}


@app.get("/weather/{city}", operation_id="get_weather", summary="Current weather in a city",
         description="Temperature and sky for a city today.")
def get_weather(city: str, units: str = "metric") -> dict[str, Any]:
    return {"city": city, "units": units, "temperature": 21, "sky": "clear"}


@app.get("/boom", operation_id="inventory_report", summary="Inventory report of the warehouse")
def boom() -> dict[str, Any]:
    raise HTTPException(status_code=500, detail="the warehouse database is on fire")


@app.get("/slow", operation_id="slow_report", summary="A report that takes a while")
async def slow(seconds: float = 5.0) -> dict[str, Any]:
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@app.get("/account/balance", operation_id="account_balance", summary="Balance of the shop's bank account")
def balance(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> dict[str, Any]:
    expected = os.environ.get(TOKEN_ENV)
    if credentials is None or not expected or credentials.credentials != expected:
        raise HTTPException(status_code=401, detail="missing or wrong bearer token")
    return {"balance": 1234.5, "currency": "EUR"}


@app.get("/reviews/{item_id}", operation_id="list_reviews", summary="Customer reviews of an item")
def reviews(item_id: int) -> list[dict[str, Any]]:
    return [{"item_id": item_id, "stars": 5, "text": "great"}]


@app.get("/openapi.json", include_in_schema=False)
def openapi_document() -> JSONResponse:
    return JSONResponse(served_document(_variant()))


def served_document(variant: str) -> dict[str, Any]:
    if variant == "broken":
        return {"swagger": "2.0", "paths": {}}
    doc = copy.deepcopy(app.openapi())
    doc["paths"]["/items/{item_id}"]["get"].pop("operationId", None)
    if variant == "v2":
        del doc["paths"]["/boom"]
        doc["paths"]["/weather/{city}"]["get"]["summary"] = "Weather forecast for a city"
    else:
        del doc["paths"]["/reviews/{item_id}"]
    return doc


def _variant() -> str:
    if VARIANT is not None and VARIANT.exists():
        return (VARIANT.read_text(encoding="utf-8").split() or ["v1"])[0]
    return "v1"


def main() -> None:
    global LOG, VARIANT
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--variant", type=Path, required=True)
    args = parser.parse_args()
    LOG, VARIANT = args.log, args.variant
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
