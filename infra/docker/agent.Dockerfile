# The allot agent. Build context: `node infra/docker/stage.ts apps/agent <dir>` (the app, its workspace packages and
# production node_modules with pnpm's layout), then `docker build -f infra/docker/agent.Dockerfile <dir>`.
# BASE_IMAGE: any image with Node >= 22.12 on PATH as `node` and a user 1000 (node:24-slim has both).
ARG BASE_IMAGE=node:24-slim
FROM ${BASE_IMAGE}
# No RUN: the same file builds on a base without a shell (the chaos suite's FROM scratch base).
COPY . /app/
COPY --chown=1000:1000 state/ /var/lib/allot/
WORKDIR /app
ENV NODE_ENV=production ALLOT_STATE_DIR=/var/lib/allot ALLOT_LOG_FORMAT=json
USER 1000:1000
VOLUME ["/var/lib/allot"]
ENTRYPOINT ["node", "apps/agent/src/main.ts"]
