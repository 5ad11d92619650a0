# Kindling API and worker image. Node 24 runs the TypeScript sources directly (type stripping), so there is no
# build step; the generated protobuf code is committed in src/gen.
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# `npm install` (not `npm ci`): npm 11 rejects its own lock in `ci` when other platforms' optional packages are
# absent from it; the locked versions are installed either way. No install scripts: production needs none.
RUN npm install --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY src ./src
COPY workers ./workers
# The streak widget's bundle (built from web/ and checked in), served at /widget/kindling-streak.js.
COPY web/dist ./web/dist
USER node
EXPOSE 8080
CMD ["node", "src/main.ts", "api"]
