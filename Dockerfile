# The Ferry broker in a small image: node:20 slim, production dependencies only, a non-root
# user, the data folder on a volume, a HEALTHCHECK on /readyz. docs/operations.md explains it.
#   docker build -t ferry .
#   docker run -d -p 7400:7400 -p 7480:7480 -v ferry-data:/data ferry
# Build stage: every dependency (zeromq and better-sqlite3 bring native prebuilds), the two
# packages compiled, then the dev dependencies pruned.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json ./
COPY packages/ferrymq/package.json packages/ferrymq/tsconfig.json packages/ferrymq/
COPY packages/ferrymq-server/package.json packages/ferrymq-server/tsconfig.json packages/ferrymq-server/
RUN npm ci --no-audit --no-fund
COPY packages/ferrymq/src packages/ferrymq/src
COPY packages/ferrymq-server/src packages/ferrymq-server/src
COPY packages/ferrymq-server/bin packages/ferrymq-server/bin
RUN npx tsc -b packages/ferrymq packages/ferrymq-server \
  && npm prune --omit=dev --no-audit --no-fund

# Runtime stage: what the broker needs to run, owned by root, run as the `node` user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/packages/ferrymq/package.json packages/ferrymq/
COPY --from=build /app/packages/ferrymq/dist packages/ferrymq/dist
COPY --from=build /app/packages/ferrymq-server/package.json packages/ferrymq-server/
COPY --from=build /app/packages/ferrymq-server/dist packages/ferrymq-server/dist
COPY --from=build /app/packages/ferrymq-server/bin packages/ferrymq-server/bin
COPY --from=build /app/packages/ferrymq-server/src/http/dashboard packages/ferrymq-server/src/http/dashboard
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
# 7400: the Ferry protocol (ZeroMQ); 7480: the HTTP gateway, dashboard, /metrics.
EXPOSE 7400 7480
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:7480/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Inside a container the broker binds every interface; publish the ports you want reachable.
# The container's own interfaces are not the network: `-p 127.0.0.1:…` decides who reaches it,
# so the image allows binds beyond loopback without CURVE (docs/security.md). Set
# FERRY_INSECURE=false once you mount keys (FERRY_CURVE_SECRET_KEY_FILE, FERRY_AUTH_FILE).
ENV FERRY_INSECURE=true
CMD ["node", "packages/ferrymq-server/bin/ferry.js", "start", "--data", "/data", "--bind", "tcp://0.0.0.0:7400", "--http", "0.0.0.0:7480", "--log-format", "json"]
