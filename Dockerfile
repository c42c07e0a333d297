# The host and the two service components in one image, built from source.
#
#   docker build -t wasm-otel/host:0.1.0 .
#
# The build stage runs `cargo xtask dist`, the command CI also runs, so the
# steps here are the ones CI proves without a container engine. The runtime
# stage holds only the runtime tree (bin/host, components/*.wasm) and runs
# as a non-root user on a read-only root filesystem: the compile cache goes
# to a writable volume the Deployment mounts at /var/cache/wasm-otel
# (docs/deploy.md says why it is not filled here).

# Pinned: the workspace's rust-version, on Debian 13 like the runtime stage
# (the binary links against its glibc).
FROM docker.io/library/rust:1.95.0-slim-trixie AS build
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
# The registry and the target directory are BuildKit caches: a rebuild after
# a change compiles only what changed. The tree is copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo xtask dist --out /dist --profile release

# Pinned to a Debian point release; pin by digest where images are promoted.
FROM docker.io/library/debian:13.6-slim
# ca-certificates: for https:// outgoing requests and OTLP collectors over TLS.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /dist /app
# A numeric user (no /etc/passwd entry needed), so that Kubernetes can check
# `runAsNonRoot` against the image.
USER 65532:65532
# 8000: a component (the Deployment sets --port); 9090: --health-addr.
EXPOSE 8000 9090
ENTRYPOINT ["/app/bin/host"]
CMD ["--help"]
