# The allot coordinator. Build context: `node infra/docker/stage.ts apps/coordinator <dir>`, then
# `docker build -f infra/docker/coordinator.Dockerfile <dir>`. BASE_IMAGE: any image with Node >= 22.12 as `node`.
ARG BASE_IMAGE=node:24-slim
FROM ${BASE_IMAGE}
COPY . /app/
WORKDIR /app
ENV NODE_ENV=production ALLOT_LOG_FORMAT=json
USER 1000:1000
ENTRYPOINT ["node", "apps/coordinator/src/main.ts"]
