# Stowage image: one binary for `stowage controller` and `stowage node`.
# Build: docker build -t stowage:dev .   (the test cluster builds the same image without Docker:
# test/cluster/images.sh)
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd cmd
COPY pkg pkg
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /stowage ./cmd/stowage

# The node plugin mounts: util-linux mount, the real NFS mount helper (nfs-common), and the
# filesystem tools for quota-enforced local volumes (xfsprogs, e2fsprogs).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends mount nfs-common e2fsprogs xfsprogs ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /stowage /stowage
ENTRYPOINT ["/stowage"]
