# syntax=docker/dockerfile:1
#
# The eks-upgrade image for scheduled and fleet runs (see docs/operations.md):
#
#   docker build -t eks-upgrade .
#   docker run --rm eks-upgrade --help
#   docker run --rm eks-upgrade validate workflows/in-place.yaml
#
# tests/it/deploy/docker.rs checks this file against Cargo.toml and the sources: the binary
# built is the workspace's, every file the build reads is copied in, and the entry point runs it.

# ---------------------------------------------------------------------------------------------
# Build: the toolchain the crate declares (`rust-version` in Cargo.toml), on the same Debian
# release as the runtime image so the binary links against the same glibc.
FROM rust:1.95-bookworm AS build
WORKDIR /src

# Only what the build reads: the manifests and lockfile, the sources of the binary and of the
# workspace's crates (Cargo loads every member's manifest, even one it does not build), the bench
# targets Cargo.toml declares (Cargo refuses a manifest whose declared targets are missing), and
# the files the sources embed with `include_str!` (the shipped workflows and scenarios), and the
# vendored crate the root manifest's `[patch]` names (Cargo loads it even though this build, without
# the sandbox, never compiles it).
COPY Cargo.toml Cargo.lock ./
COPY vendor ./vendor
COPY src ./src
COPY crates ./crates
COPY benches ./benches
COPY examples ./examples
COPY workflows ./workflows

# `--locked`: build exactly the dependency versions reviewed in Cargo.lock.
# `--no-default-features`: without the `sandbox` feature, so the image carries none of the
# emulator's code or dependencies (`demo`, `sandbox` and `run --sandbox` say so). The cache mounts
# keep the registry and incremental artefacts between builds; because the target directory is a
# cache mount, the binary is copied out of it in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --bin eks-upgrade \
    && install -D -m 0755 target/release/eks-upgrade /out/eks-upgrade

# ---------------------------------------------------------------------------------------------
# Runtime: Debian slim, for the CA certificates the AWS SDK and the webhook client load from the
# system store, and for /bin/sh, which helpers/scheduled-run.sh (the CronJob's entry point)
# needs. Time zones are compiled into the binary (chrono-tz); no tzdata is needed.
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A fixed, non-root uid/gid so Kubernetes `runAsNonRoot` can verify it without a user name.
RUN groupadd --system --gid 10001 eks-upgrade \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin eks-upgrade

COPY --from=build /out/eks-upgrade /usr/local/bin/eks-upgrade

# The shipped workflows and helpers, laid out as in the repository so that relative paths in the
# README (`workflows/in-place.yaml`) and in workflows (`helpers/eksctl.yaml`) work from WORKDIR.
WORKDIR /opt/eks-upgrade
COPY workflows ./workflows
COPY helpers ./helpers
RUN chmod 0755 helpers/scheduled-run.sh

# Journals and verification records go to $XDG_STATE_HOME/eks-upgrade when no `--state s3://…`
# is given; pods mount an emptyDir here (the root filesystem is read-only), so give the path a
# home that is writable in plain `docker run` too.
ENV XDG_STATE_HOME=/var/lib/eks-upgrade
RUN install -d -o 10001 -g 10001 -m 0750 /var/lib/eks-upgrade

USER 10001:10001
ENTRYPOINT ["/usr/local/bin/eks-upgrade"]
CMD ["--help"]
