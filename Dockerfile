# syntax=docker/dockerfile:1
# Hydra's three images, for hosts with a container engine (docs/images.md):
#
#   docker buildx build --target hydra-manager  --build-arg VERSION=v0.1.0 -t ghcr.io/hydra-csi/hydra-manager:v0.1.0 .
#   docker buildx build --target hydra-csi      --build-arg VERSION=v0.1.0 -t ghcr.io/hydra-csi/hydra-csi:v0.1.0 .
#   docker buildx build --target hydra-csi-node --build-arg VERSION=v0.1.0 -t ghcr.io/hydra-csi/hydra-csi-node:v0.1.0 .
#
# Without an engine, `make images` writes the same images from Go
# (hack/images). This file cannot be built on Hydra's development machines,
# which have no engine.

ARG GO_VERSION=1.26

# Static binaries, cross-compiled on the build host for the target platform.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-X github.com/hydra-csi/hydra/pkg/version.Version=${VERSION}" \
      -o /out/ ./cmd/...

# The manager, with the hydra CLI beside it for `kubectl exec`. Non-root.
FROM gcr.io/distroless/static-debian12:nonroot AS hydra-manager
ARG VERSION=dev
LABEL org.opencontainers.image.title=hydra-manager \
      org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.source=https://github.com/hydra-csi/hydra
COPY --from=build /out/hydra-manager /out/hydra /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/hydra-manager"]

# The CSI controller (hydra-csi --mode=controller): talks to the manager and
# the API server only, so it runs as nonroot.
FROM gcr.io/distroless/static-debian12:nonroot AS hydra-csi
ARG VERSION=dev
LABEL org.opencontainers.image.title=hydra-csi \
      org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.source=https://github.com/hydra-csi/hydra
COPY --from=build /out/hydra-csi /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/hydra-csi"]

# The CSI node plugin (hydra-csi --mode=node): root, because it mounts
# tmpfs and bind-mounts views into pods; k8s.io/mount-utils execs mount and
# umount (util-linux's, from the mount package) to unmount them.
FROM debian:12-slim AS hydra-csi-node
ARG VERSION=dev
LABEL org.opencontainers.image.title=hydra-csi-node \
      org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.source=https://github.com/hydra-csi/hydra
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates mount \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/hydra-csi /usr/local/bin/
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 0:0
ENTRYPOINT ["/usr/local/bin/hydra-csi"]
