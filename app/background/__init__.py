"""Work each gunicorn worker does beside serving HTTP, on one loop helper: the autoscaler, the
usage sampler and the dashboard's time series."""
