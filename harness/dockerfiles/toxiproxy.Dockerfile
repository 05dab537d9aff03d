# Local stand-in for ghcr.io/shopify/toxiproxy: the server binary built from the
# pinned Go module, on the debootstrap base.
ARG BASE
FROM ${BASE}
COPY toxiproxy-server /toxiproxy
EXPOSE 8474
ENTRYPOINT ["/toxiproxy"]
CMD ["-host=0.0.0.0"]
