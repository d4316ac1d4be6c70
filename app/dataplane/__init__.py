"""The data plane's gateway side: the routing table nginx loads, the call log it sends, where a
call goes (upstreams, scale from zero) and the gateway's own proxy for the calls nginx hands it."""
