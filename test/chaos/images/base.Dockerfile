# The chaos suite's stand-in for node:24-slim where no registry is reachable: the host's own Node binary and the
# shared libraries ldd lists, FROM scratch (rootfs/ is assembled by test/chaos/images.ts).
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin
