# Portico's image, as docker-compose.yml builds it. Multi-stage: the TypeScript build and its
# dev dependencies stay in the first stages; the runtime image has dist/ and production
# dependencies only, and runs as the unprivileged `node` user.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are copied.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY examples ./examples
RUN npx tsc -p tsconfig.json

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --chown=root:root package.json ./
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist/src ./dist/src
# The example upstreams, so the compose stack can run them from the same image.
COPY --from=build --chown=root:root /app/dist/examples ./dist/examples
USER node
# 8080: traffic; 9901: the primary's admin listener (health, readiness, metrics, admin API).
EXPOSE 8080 9901
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["--config", "/etc/portico/config.yaml"]
