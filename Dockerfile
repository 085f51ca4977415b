# bgpgen with the three routing daemons it drives, all from Debian 12 (bookworm): gobgpd 3.10,
# BIRD 2.0.12 and FRR 8.4, the versions bgpgen is tested against. One image for every backend:
# `bgpgen run --backend gobgp|frr|bird --spawn` starts and supervises the chosen daemon itself.
#
# No container registry is needed: the base image is a debootstrapped Debian 12 imported into the
# engine, packages come from Debian's mirror, crates from crates.io, and the Rust toolchain is
# Debian 12's own `rustc-web`/`cargo-web` (a current Rust kept for Firefox and Chromium builds;
# bookworm's `rustc` 1.63 is too old). Plain `docker build` works with and without BuildKit (no
# `# syntax=` line: that would make BuildKit fetch a frontend image from a registry).
#
#   scripts/image-base                                # debootstrap + docker import: bgpgen/debian:bookworm
#   docker build --network host -t ghcr.io/example/bgpgen:0.1.0 .
#
# Around a binary already built on a Debian 12 host (what scripts/image-test does in CI: no cargo
# and no toolchain inside docker), BGPGEN_BIN names it, as a path inside the build context:
#
#   cargo build --release --locked
#   docker build --network host --build-arg BGPGEN_BIN=target/release/bgpgen \
#       -t ghcr.io/example/bgpgen:0.1.0 .
#
# Build arguments:
#   BASE_IMAGE   base of the runtime image (default bgpgen/debian:bookworm, from scripts/image-base)
#   BUILD_IMAGE  base of the cargo stage (default the same image)
#   BGPGEN_BIN   a prebuilt binary to use instead of compiling (default: none, cargo builds it)
#   EXTRA_CA_CERTS  PEM certificates the cargo stage trusts besides Debian's, for a proxy that
#                re-signs TLS: --build-arg EXTRA_CA_CERTS="$(cat /usr/local/share/ca-certificates/*.crt)"
#                (the cargo stage only; the image itself keeps Debian's ca-certificates)
# Any Debian 12 image works as either base (e.g. debian:bookworm-slim where a registry is at hand).
#
# `ghcr.io/example` is a placeholder registry: push to your own and change the image in yamls/.
#
# The image also works as Kube-OVN's NAT-gateway speaker: /kube-ovn/kube-ovn-speaker (the command
# the Kube-OVN controller gives the injected sidecar) runs `bgpgen run --backend=gobgp --spawn` with
# the controller's arguments (yamls/kube-ovn-speaker.sh, yamls/vpc-nat-gateway.yaml).
#
# Stages: runtime-base (the daemons, users, directories), build (the binary) and the image itself
# (runtime-base + the binary). No stage depends on BuildKit pruning unused stages: the classic
# builder builds every stage.

ARG BASE_IMAGE=bgpgen/debian:bookworm
ARG BUILD_IMAGE=bgpgen/debian:bookworm

FROM ${BASE_IMAGE} AS runtime-base

# Privileges, measured with each daemon run as an unprivileged user (uid 65534, no capabilities)
# in a network namespace, peering with a gobgpd that requires a TCP MD5 password:
# - TCP MD5 passwords (TCP_MD5SIG) need no capability: all three established authenticated
#   sessions with none. CAP_NET_ADMIN is not needed.
# - Listening on BGP port 179 needs CAP_NET_BIND_SERVICE:
#   * gobgpd: only in passive mode (--passivemode renders `port = 179`); in the default active mode
#     (`port = -1`, as kube-ovn-speaker) it does not listen and needs no capability at all.
#   * BIRD: always opens its listening socket on 179; without the capability the protocol fails
#     ("Cannot open listening socket") and no session comes up.
#   * FRR bgpd: listens on 179 (bgpgen does not pass `-p 0`); it fails to start without the
#     capability. bgpgen passes `-P 0`: no TCP vty, only the Unix socket in /run/bgpgen. Run as non-root it keeps the current user (bgpgen passes `-u root` only when
#     started as root). It wants /var/tmp/frr writable (crash log; not fatal), vtysh reads
#     /etc/frr/vtysh.conf (a warning when unreadable), and frr-reload.py --reload dies with a
#     PermissionError unless it can write /var/log/frr/frr-reload.log.
# Kubernetes gives a non-root container no ambient capabilities, so bird and bgpd carry
# cap_net_bind_service as a file capability. The kernel then refuses to execute them ("Operation
# not permitted") unless the container keeps NET_BIND_SERVICE in its capability set, and grants
# the capability only when the container may gain privileges on exec (no_new_privs off, i.e.
# allowPrivilegeEscalation not false): see the securityContext in yamls/speaker-{bird,frr}.yaml.
# gobgpd gets no file capability, so that it runs in a container with every capability dropped
# (yamls/speaker-gobgp.yaml); for --passivemode run that container as root with NET_BIND_SERVICE.
# The daemons get nothing else; bgpgen itself needs no capability, and sends its signals with
# kill(2) (no external `kill` needed).
#
# libcap2-bin (setcap) stays: iproute2, which frr depends on, depends on it, so purging it with
# --auto-remove would take FRR and python3 with it.
#
# /run/bgpgen holds the rendered configuration, pid files and daemon sockets (an emptyDir in the
# DaemonSets; the image's directory in the NAT-gateway sidecar, which gets no volume). bgpd's
# run directory is bgpgen's (--vty_socket, -i); /run/frr exists for FRR's defaults on a writable
# root. The FRR directories are emptyDirs in yamls/speaker-frr.yaml (read-only root filesystem).
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    apt-get update; \
    apt-get upgrade -y; \
    apt-get install -y --no-install-recommends \
        ca-certificates gobgpd bird2 frr frr-pythontools libcap2-bin; \
    setcap cap_net_bind_service=+ep /usr/sbin/bird; \
    setcap cap_net_bind_service=+ep /usr/lib/frr/bgpd; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log; \
    groupadd --system --gid 65532 bgpgen; \
    useradd --system --uid 65532 --gid bgpgen --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin bgpgen; \
    install -d -o bgpgen -g bgpgen -m 0750 /run/bgpgen; \
    install -d -o bgpgen -g bgpgen -m 0750 /run/frr; \
    install -d -o bgpgen -g bgpgen -m 0750 /var/tmp/frr; \
    install -d -o bgpgen -g bgpgen -m 0750 /var/log/frr; \
    chmod 0755 /etc/frr; \
    chmod 0644 /etc/frr/vtysh.conf; \
    getcap /usr/sbin/bird /usr/lib/frr/bgpd; \
    /usr/lib/frr/bgpd --version; bird --version; gobgpd --version; python3 --version

COPY yamls/kube-ovn-speaker.sh /kube-ovn/kube-ovn-speaker
# Git keeps the script's mode, but a checkout with another umask or a copied tree may not
# (`COPY --chmod` needs BuildKit).
RUN chmod 0755 /kube-ovn/kube-ovn-speaker

USER 65532:65532
WORKDIR /run/bgpgen
ENTRYPOINT ["/usr/local/bin/bgpgen"]
CMD ["--help"]

# The bgpgen binary: compiled here (the default), or BGPGEN_BIN copied from the build context. Each
# step is skipped when not needed, so `--build-arg BGPGEN_BIN=...` runs no cargo and installs no
# toolchain; the toolchain layer is cached between full builds.
FROM ${BUILD_IMAGE} AS build
ARG BGPGEN_BIN=
ARG EXTRA_CA_CERTS=
RUN set -eux; \
    if [ -z "$BGPGEN_BIN" ]; then \
        export DEBIAN_FRONTEND=noninteractive; \
        apt-get update; \
        apt-get install -y --no-install-recommends \
            ca-certificates cargo-web rustc-web gcc libc6-dev; \
        rm -rf /var/lib/apt/lists/*; \
        if [ -n "$EXTRA_CA_CERTS" ]; then \
            printf '%s\n' "$EXTRA_CA_CERTS" >/usr/local/share/ca-certificates/extra.crt; \
            update-ca-certificates; \
        fi; \
        cargo --version; rustc --version; \
    fi
WORKDIR /src
COPY . .
RUN set -eux; \
    if [ -n "$BGPGEN_BIN" ]; then \
        install -D -m 0755 "$BGPGEN_BIN" /out/bgpgen; \
    else \
        cargo build --release --locked -p bgpgen; \
        install -D -m 0755 target/release/bgpgen /out/bgpgen; \
    fi; \
    /out/bgpgen --version

FROM runtime-base
COPY --from=build /out/bgpgen /usr/local/bin/bgpgen
