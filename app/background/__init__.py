"""Work each gunicorn worker does beside serving HTTP: the autoscaler, the usage sampler and the
dashboard's time series, and ``loop``, the one helper they run on (as do the receiver of nginx's
call log and the async worker)."""
