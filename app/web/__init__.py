"""The HTTP edge: typed access to the application's parts, the request guards (auth, cross-site),
request bodies read by schemas, streaming, and one blueprint per resource (``blueprints``)."""
