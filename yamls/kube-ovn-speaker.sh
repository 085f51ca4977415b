#!/bin/sh
# Installed as /kube-ovn/kube-ovn-speaker in the bgpgen image (see Dockerfile).
#
# Kube-OVN's controller injects the BGP speaker sidecar of a VpcNatGateway whose spec.bgpSpeaker is
# enabled, with the image named by `bgpSpeakerImage` in ConfigMap kube-system/ovn-vpc-nat-config,
# the command /kube-ovn/kube-ovn-speaker, and kube-ovn-speaker's arguments built from
# spec.bgpSpeaker (GenNatGwBgpSpeakerContainer):
#
#   --nat-gw-mode [--router-id=ID] [--auth-password=PW] [--graceful-restart] [--holdtime=1m0s]
#   --cluster-as=ASN --neighbor-as=ASN [--neighbor-address=V4,...] [--neighbor-ipv6-address=V6,...]
#   [spec.bgpSpeaker.extraArgs...]
#
# with GATEWAY_NAME, POD_IP and POD_IPS in the environment. bgpgen takes those flags unchanged, so
# this script only adds what `bgpgen run` needs on top of them: the daemon (gobgpd, started and
# supervised by bgpgen itself, so the one injected container is enough) and where its files live.
# The Kubernetes API is reached in-cluster with the pod's service account (vpc-nat-gw, set by the
# controller): see yamls/vpc-nat-gateway.yaml for its RBAC.
#
# The backend is fixed: the controller lets users add speaker flags only (extraArgs), and bgpgen
# checks those as speaker flags. tests/yamls.rs parses the flags below, and tests/image.rs runs
# this script in the image as the controller would.
#
# gobgpd's API is a Unix socket in bgpgen's directory (no TCP port that other processes of the
# pod could use); the endpoint (/healthz, /readyz, /metrics) is on the pod's loopback only: the
# controller declares no probes for the sidecar. On SIGTERM bgpgen withdraws the EIPs and stops
# gobgpd; with graceful restart (spec.bgpSpeaker.enableGracefulRestart) it stops gobgpd without
# a Cease, and the routers keep the EIPs as stale while the gateway's pod is replaced.
set -eu

exec /usr/local/bin/bgpgen run \
    --backend=gobgp \
    --spawn \
    --config-file=/run/bgpgen/gobgpd.toml \
    --gobgp-api=unix:///run/bgpgen/gobgpd.sock \
    --metrics-addr=127.0.0.1:10661 \
    "$@"
