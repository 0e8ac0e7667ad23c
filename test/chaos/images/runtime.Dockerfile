# The chaos suite's base for the app images where no registry is reachable: the shared libraries the release
# executables load (glibc, libstdc++, libgcc_s, as ldd lists them) and /etc/passwd with user 1000, FROM scratch
# (rootfs/ is assembled by test/chaos/images.ts). The app Dockerfiles build on it by its digest.
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin
