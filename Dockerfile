# syntax=docker/dockerfile:1
#
# bgpgen with the three routing daemons it drives, all from Debian 12 (bookworm): gobgpd 3.10,
# BIRD 2.0.12 and FRR 8.4, the versions bgpgen is tested against. One image for every backend:
# `bgpgen run --backend gobgp|frr|bird --spawn` starts and supervises the chosen daemon itself.
#
#   docker build -t ghcr.io/example/bgpgen:0.1.0 .
#
# `ghcr.io/example` is a placeholder registry: push to your own and change the image in yamls/.
#
# The image also works as Kube-OVN's NAT-gateway speaker: /kube-ovn/kube-ovn-speaker (the command
# the Kube-OVN controller gives the injected sidecar) runs `bgpgen run --backend=gobgp --spawn` with
# the controller's arguments (yamls/kube-ovn-speaker.sh, yamls/vpc-nat-gateway.yaml).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
 && install -D -m 0755 target/release/bgpgen /out/bgpgen

FROM debian:bookworm-slim

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
#     capability. Run as non-root it keeps the current user (bgpgen passes `-u root` only when
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
# The daemons get nothing else; bgpgen itself needs no capability.
#
# /run/bgpgen holds the rendered configuration, pid files and daemon sockets (an emptyDir in the
# DaemonSets; the image's directory in the NAT-gateway sidecar, which gets no volume). The FRR
# directories are emptyDirs in yamls/speaker-frr.yaml too (read-only root filesystem).
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        ca-certificates gobgpd bird2 frr frr-pythontools libcap2-bin; \
    setcap cap_net_bind_service=+ep /usr/sbin/bird; \
    setcap cap_net_bind_service=+ep /usr/lib/frr/bgpd; \
    apt-get purge -y --auto-remove libcap2-bin; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 65532 bgpgen; \
    useradd --system --uid 65532 --gid bgpgen --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin bgpgen; \
    install -d -o bgpgen -g bgpgen -m 0750 /run/bgpgen; \
    install -d -o bgpgen -g bgpgen -m 0750 /var/tmp/frr; \
    install -d -o bgpgen -g bgpgen -m 0750 /var/log/frr; \
    chmod 0755 /etc/frr; \
    chmod 0644 /etc/frr/vtysh.conf

COPY --from=build /out/bgpgen /usr/local/bin/bgpgen
COPY --chmod=0755 yamls/kube-ovn-speaker.sh /kube-ovn/kube-ovn-speaker

USER 65532:65532
WORKDIR /run/bgpgen
ENTRYPOINT ["/usr/local/bin/bgpgen"]
CMD ["--help"]
