# Multi-stage image: dependencies are installed in a build stage, the runtime stage runs as
# a non-root user with the model cache on a volume.
FROM node:20-slim AS deps
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json ./
# `prepare` runs scripts/build-web.mjs, which without Vite (or web/) says so and builds nothing.
COPY scripts/build-web.mjs ./scripts/
RUN npm ci --omit=dev --no-audit --no-fund

# The web page (web/dist) needs Vite, a dev dependency: built in a stage of its own.
FROM node:20-slim AS web
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY scripts/build-web.mjs ./scripts/
COPY web ./web
RUN npm run build:web

FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production \
    MODEL_CACHE_DIR=/models \
    PORT=3000
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY scripts ./scripts
COPY --from=web /app/web/dist ./web/dist
RUN mkdir -p /models && chown node:node /models
USER node
VOLUME ["/models"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "--import", "tsx", "src/server.ts"]
