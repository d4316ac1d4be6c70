-- wrk script: every request a small POST, like a function call with a body.
wrk.method = "POST"
wrk.body = "ping"
wrk.headers["Content-Type"] = "text/plain"
