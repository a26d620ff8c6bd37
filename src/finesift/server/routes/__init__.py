"""One module per domain, each exposing ``router``; ``app.ROUTE_MODULES`` lists them."""
