"""`python3 -m shop SERVICE`: runs one service of the shop with uvicorn on port 8000."""

import importlib
import sys

import uvicorn

SERVICES = {
    "api_gateway": "shop.api_gateway:app",
    "payment_gateway": "shop.payment_gateway:app",
    "auth_service": "shop.auth_service:app",
    "inventory_service": "shop.inventory_service:app",
    "alert_sink": "shop.alert_sink:app",
}


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in SERVICES:
        print(f"usage: python3 -m shop {{{'|'.join(SERVICES)}}}", file=sys.stderr)
        raise SystemExit(2)
    module, _, attr = SERVICES[name].partition(":")
    app = getattr(importlib.import_module(module), attr)
    uvicorn.run(app, host="0.0.0.0", port=8000, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
