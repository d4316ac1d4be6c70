"""One blueprint per resource. A view holds only HTTP: it reads the request, calls the one part it
needs through ``app.web.state``, and answers; none imports another."""
