# Cairn's container image: Node.js 24 (Debian bookworm, slim) running the TypeScript sources
# directly (type stripping), production dependencies only, as the unprivileged `node` user.
#
#   docker build -t cairn .
#   docker run -p 4437:4437 -v cairn-wal:/var/lib/cairn -e CAIRN_AUTH_TOKENS_FILE=… cairn
#
# The WAL and checkpoints live in /var/lib/cairn: mount a durable volume there (acknowledged
# appends are only on this disk until they are sealed into the object store).

# Build stage: the web inspector's static files (esbuild and preact are dev dependencies).
FROM node:24-bookworm-slim AS inspector
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY scripts/build-inspector.ts ./scripts/
COPY src/inspector ./src/inspector
RUN node scripts/build-inspector.ts

FROM node:24-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY bin ./bin
COPY src ./src
COPY --from=inspector /build/build/inspector ./build/inspector

RUN mkdir -p /var/lib/cairn && chown node:node /var/lib/cairn
USER node

ENV CAIRN_HOST=0.0.0.0 \
    CAIRN_PORT=4437 \
    CAIRN_DATA_DIR=/var/lib/cairn
VOLUME ["/var/lib/cairn"]
EXPOSE 4437

# Liveness: /healthz answers 200 while the process serves HTTP.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.CAIRN_PORT || 4437) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# SIGTERM: stop accepting, end live readers, finish in-flight appends, fsync the WAL, exit 0.
STOPSIGNAL SIGTERM
# A non-loopback host needs auth configuration (CAIRN_AUTH_TOKENS_FILE) or, for trials,
# CAIRN_ALLOW_UNAUTHENTICATED=true; without either Cairn refuses to start.
CMD ["node", "src/cli/main.ts", "serve", "--host", "0.0.0.0", "--data-dir", "/var/lib/cairn"]
