# One image, two entrypoints: /manager (the controllers) and /router (the fly-replay router).
# Build: make docker-build IMG=<registry>/hangar:<tag>
FROM golang:1.26 AS build
WORKDIR /src

# Modules first, so source edits do not invalidate the download layer.
COPY go.mod go.sum ./
RUN go mod download

COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
COPY pkg/ pkg/
COPY router/ router/

ARG TARGETOS=linux
ARG TARGETARCH=amd64
ENV CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH}
# The build identity (internal/version); make docker-build passes what git says. Declared after the
# download layer so a new commit does not invalidate it.
ARG VERSION=dev
ARG COMMIT=
ARG BUILD_DATE=
RUN LDFLAGS="-s -w -X github.com/hangar-dev/hangar/internal/version.version=${VERSION} -X github.com/hangar-dev/hangar/internal/version.commit=${COMMIT} -X github.com/hangar-dev/hangar/internal/version.date=${BUILD_DATE}" \
 && go build -trimpath -ldflags="${LDFLAGS}" -o /out/manager ./cmd/manager \
 && go build -trimpath -ldflags="${LDFLAGS}" -o /out/router ./cmd/router

# The router alone, for a FlyRouter's machines on Fly (they run the image's entrypoint):
# docker build --target router (make docker-build-router).
FROM gcr.io/distroless/static:nonroot AS router
ARG VERSION=dev
ARG COMMIT=
LABEL org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${COMMIT}"
WORKDIR /
COPY --from=build /out/router /router
USER 65532:65532
ENTRYPOINT ["/router"]

# The default target. distroless static: no shell, no package manager, runs as the nonroot user
# (65532). /router is here too, for the in-cluster router Deployment (config/router).
FROM gcr.io/distroless/static:nonroot
ARG VERSION=dev
ARG COMMIT=
LABEL org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${COMMIT}"
WORKDIR /
COPY --from=build /out/manager /manager
COPY --from=build /out/router /router
USER 65532:65532
ENTRYPOINT ["/manager"]
