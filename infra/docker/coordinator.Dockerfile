# The allot coordinator: the release's single executable (dist/release/bin/allot-coordinator, what the .deb installs)
# on a base pinned by digest. It keeps no state (its view is rebuilt from NATS and the KV buckets).
#
#   docker build --build-arg BASE_IMAGE=debian:bookworm-slim@sha256:<digest> \
#     -f infra/docker/coordinator.Dockerfile dist/release/bin
#
# BASE_IMAGE has no default: a tag is not a pin (see agent.Dockerfile for an engine without a registry). The dashboard
# comes with the executable (its built files are SEA assets): configure http (ALLOT_* or --config) to serve it.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
# No RUN, and the executable last (see agent.Dockerfile).
ENV NODE_ENV=production ALLOT_LOG_FORMAT=json
USER 1000:1000
ENTRYPOINT ["/usr/bin/allot-coordinator"]
COPY allot-coordinator /usr/bin/allot-coordinator
