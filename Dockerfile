# Switchyard container image: one static (musl) binary on an empty `scratch`
# base, running as a non-root user. No shell, no libc, no CA bundle: the
# binary carries the Mozilla root certificates (webpki-roots) for HTTPS
# upstreams.
#
#   docker build -t switchyard .
#   docker run --rm -p 8000:8000 switchyard                  # the bundled router.yaml
#   docker run --rm -p 8000:8000 -e OPENAI_API_KEY \
#     -v "$PWD/my-router.yaml:/etc/switchyard/router.yaml:ro" switchyard
#   docker run --rm -v "$PWD/my-router.yaml:/r.yaml:ro" switchyard check /r.yaml
#
# The same binary without Docker: see deploy/README.md.

# ---------------------------------------------------------------------------
# Build stage. On Alpine the host target is `<arch>-unknown-linux-musl`, and
# Rust links musl targets statically (crt-static), so the binary runs on
# `scratch`. gcc + musl-dev build ring's C and assembly code.
FROM rust:1-alpine AS builder
# Unpinned: rust:1-alpine itself moves with Rust and Alpine releases.
# hadolint ignore=DL3018
RUN apk add --no-cache gcc musl-dev
WORKDIR /build
ENV CARGO_TERM_COLOR=never \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    RUSTFLAGS="-C target-feature=+crt-static"

# 1) Dependencies only, against a dummy crate: this layer is rebuilt only when
#    Cargo.toml, Cargo.lock or build.rs change, not on every source edit.
#    (benches/added_latency.rs must exist because Cargo.toml declares it.)
COPY Cargo.toml Cargo.lock build.rs ./
RUN set -eux; \
    target="$(uname -m)-unknown-linux-musl"; \
    mkdir -p src benches; \
    echo 'fn main() {}' > src/main.rs; \
    : > src/lib.rs; \
    echo 'fn main() {}' > benches/added_latency.rs; \
    cargo build --release --locked --target "$target"; \
    rm -rf src benches \
        "target/$target/release/.fingerprint/switchyard-"* \
        "target/$target/release/deps/switchyard-"* \
        "target/$target/release/deps/libswitchyard-"*

# 2) The real build. .dockerignore keeps docs, tests, target/ and .git out of
#    the context. (Without .git the build-info commit reads "unknown".)
COPY . .
RUN set -eux; \
    target="$(uname -m)-unknown-linux-musl"; \
    touch src/main.rs src/lib.rs; \
    cargo build --release --locked --target "$target"; \
    cp "target/$target/release/switchyard" /switchyard; \
    /switchyard --version; \
    /switchyard check router.yaml

# ---------------------------------------------------------------------------
# Runtime stage: the binary, the default config, nothing else.
FROM scratch
LABEL org.opencontainers.image.title="switchyard" \
      org.opencontainers.image.description="An OpenAI-compatible reverse proxy and model router" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /switchyard /switchyard
# The default model table (the bundled router.yaml: `demo` works with no LLM).
# Mount your own over it: -v ./router.yaml:/etc/switchyard/router.yaml:ro
COPY router.yaml /etc/switchyard/router.yaml
# The listen address is pinned so that EXPOSE, the published port and the
# HEALTHCHECK agree whatever `server.listen` the mounted config says; publish
# another host port (-p 9000:8000) rather than changing it.
ENV SWITCHYARD_CONFIG=/etc/switchyard/router.yaml \
    SWITCHYARD_LISTEN=0.0.0.0:8000
# Non-root (the distroless "nonroot" IDs); numeric, since scratch has no /etc/passwd.
USER 65532:65532
EXPOSE 8000
# `switchyard healthcheck` GETs http://127.0.0.1:8000/health (liveness) and
# exits 0 or 1: there is no curl in this image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/switchyard", "healthcheck"]
ENTRYPOINT ["/switchyard"]
CMD ["--config", "/etc/switchyard/router.yaml"]
