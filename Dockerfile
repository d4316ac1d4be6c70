# The gateway image: gunicorn with gevent workers serving wsgi:app.
#
# PYTHON_IMAGE is the base of every stage: the official slim image by default, or a local
# Debian-built one where no registry is reachable (scripts/base-images.sh). Stage one builds
# wheels for the project and its dependencies (from ./wheelhouse when PIP_NO_INDEX=1, so no
# network is needed); stage two installs them offline into a venv; the final image gets only
# that venv, the two entry files and an unprivileged user.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS wheels
ARG PIP_NO_INDEX=0
ENV PIP_NO_INDEX=${PIP_NO_INDEX} PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY wheelhouse/ /wheelhouse/
COPY setup.cfg pyproject.toml README.md /src/
COPY app /src/app
RUN python3 -m venv /build \
 && /build/bin/pip wheel --wheel-dir /wheels --find-links /wheelhouse /src

FROM ${PYTHON_IMAGE} AS install
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY --from=wheels /wheels /wheels
# The gateway's venv gets no pip of its own; a throwaway venv's pip installs into it.
RUN python3 -m venv --without-pip /opt/gateway \
 && python3 -m venv /tmp/pip \
 && /tmp/pip/bin/pip --python /opt/gateway/bin/python install --no-index --find-links /wheels faas-swarm-py

FROM ${PYTHON_IMAGE}
ARG GATEWAY_UID=10001
ARG GIT_SHA=unknown
RUN useradd --system --uid "${GATEWAY_UID}" --no-create-home --shell /usr/sbin/nologin gateway \
 && install -d -o "${GATEWAY_UID}" -m 0700 /var/lib/gateway
COPY --from=install /opt/gateway /opt/gateway
COPY gunicorn.conf.py wsgi.py /srv/gateway/
WORKDIR /srv/gateway
# The state folder (the async queue) is the one the user owns; the stack mounts a volume there,
# which two gateway containers on one node share: each keeps its metrics in its own /tmp.
ENV PATH=/opt/gateway/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 git_sha=${GIT_SHA} \
    state_dir=/var/lib/gateway metrics_dir=/tmp/gateway-metrics
# Not root: the Docker socket is reached through its group, given at run time as the primary
# group (docker-compose.yml sets user: UID:DOCKER_GID).
USER ${GATEWAY_UID}
EXPOSE 8080
# A probe every 3 s: a new task is healthy, and a start-first update goes on, seconds after it
# answers; ten failures in a row (30 s) still mark it unhealthy. GET /healthz from bash, whose
# /dev/tcp needs no other program: a Python interpreter started every 3 s took 1.4% of a core,
# a fifth of an idle gateway's CPU with a thousand functions (bash: 2 ms a probe).
HEALTHCHECK --interval=3s --timeout=3s --start-period=15s --retries=10 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${port:-8080} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r line <&3 && [[ $line == HTTP/1.?' 200 '* ]]"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
