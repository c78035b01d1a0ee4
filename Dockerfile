# One image with both binaries (`draftr` and `draftr-router`); docker-compose.yml runs each
# subgraph and the router from it. Release build: apollo-router takes a while to compile.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends protobuf-compiler && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 draftr
COPY --from=build /src/target/release/draftr /src/target/release/draftr-router /usr/local/bin/
COPY router/router.yaml /etc/draftr/router.yaml
COPY schema/supergraph.graphql /etc/draftr/supergraph.graphql
USER draftr
ENTRYPOINT ["draftr"]
