# The allot agent: the release's single executable (`pnpm release` makes dist/release/bin/allot-agent, the file the
# .deb installs) on a base pinned by digest. The executable needs only glibc, libstdc++ and libgcc_s: no Node.
#
#   docker build --build-arg BASE_IMAGE=debian:bookworm-slim@sha256:<digest> \
#     -f infra/docker/agent.Dockerfile dist/release/bin
#
# BASE_IMAGE has no default on purpose: a tag is not a pin, and a build without one fails at once ("base name should
# not be blank"). Resolve the digest you vetted (`docker buildx imagetools inspect debian:bookworm-slim`) and pass it.
# Without a registry, an image of the engine's own store by its id (`sha256:<id>`, the digest of its config) works
# with the classic builder (DOCKER_BUILDKIT=0): the chaos suite builds on its runtime image that way
# (test/chaos/images.ts).
#
# The state directory is a volume owned by uid 1000: mount a host directory (or a named volume) owned by 1000 at
# /var/lib/allot; that is what survives an upgrade (a new container from the next image on the same volume).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
# No RUN (the base may have no shell), and the executable last: the classic builder copies the whole root file system
# for each instruction on some storage drivers, so the metadata goes first while it is small.
# MALLOC_ARENA_MAX=1 as in the systemd unit: one malloc arena for the agent's few threads, about 3 MB less idle RSS.
ENV NODE_ENV=production ALLOT_STATE_DIR=/var/lib/allot ALLOT_LOG_FORMAT=json MALLOC_ARENA_MAX=1
USER 1000:1000
VOLUME ["/var/lib/allot"]
ENTRYPOINT ["/usr/bin/allot-agent"]
COPY allot-agent /usr/bin/allot-agent
