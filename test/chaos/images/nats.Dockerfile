# nats-server from the host (its binary and the libraries ldd lists), FROM scratch; flags are given per container.
FROM scratch
COPY rootfs/ /
ENTRYPOINT ["/usr/sbin/nats-server"]
