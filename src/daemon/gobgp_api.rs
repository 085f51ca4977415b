//! A typed gRPC client for gobgpd (GoBGP 3.x, `package apipb`).
//!
//! GoBGP cannot originate routes from its TOML file, so the GoBGP backend pushes `routes.txt`
//! through this API, as a diff against what gobgpd already holds, and repairs the neighbors that a
//! SIGHUP reload did not apply (docs/design.md, "Reload pitfalls"). The protocol buffers are bgpgen's own
//! minimal, wire-compatible subset of the upstream API (`proto/gobgp.proto`, compiled by
//! `build.rs` with protox); nothing of the generated code leaks out of this module.
//!
//! Facts this module relies on (checked against gobgpd 3.10, see the tests):
//! - A path this speaker originated through the API has no source address: gobgpd reports its
//!   `neighbor_ip` as Go's `"<nil>"` (and `source_asn` 0); a path learned from a peer carries the
//!   peer's address there. That is how [`GobgpApi::list_local_paths`] tells them apart.
//! - `AddPathStream` takes withdrawals too (`is_withdraw`), so adds and deletes of a sync go in one
//!   client stream instead of one unary `DeletePath` per prefix.
//! - A path announced with the unspecified next hop (`0.0.0.0`, `::`) is sent to each peer with the
//!   session's local address. An IPv4 prefix with an IPv4 next hop uses `NextHopAttribute`; any
//!   other combination `MpReachNLRIAttribute`.
//! - `UpdatePeer` applies only timers in place (and only when everything else matches the
//!   running neighbor exactly, defaults included); changes of the session parameters re-create
//!   the neighbor; `ebgp-multihop` changes are ignored. So [`GobgpApi::ensure_peers`] uses
//!   `UpdatePeer` for timer-only changes and `DeletePeer` + `AddPeer` for anything else, then
//!   reads the peers back to check the result.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use prost::Message;
use thiserror::Error;
use tonic::transport::{Channel, Endpoint};

use crate::intent::Intent;
use crate::model::Family;
use crate::routes_file::Path;

#[allow(
    dead_code,
    clippy::all,
    clippy::pedantic,
    missing_docs,
    unreachable_pub,
    rustdoc::all
)]
mod pb {
    pub mod google {
        pub mod protobuf {
            include!(concat!(env!("OUT_DIR"), "/google.protobuf.rs"));
        }
    }
    pub mod apipb {
        include!(concat!(env!("OUT_DIR"), "/apipb.rs"));
    }
}

use pb::apipb;
use pb::apipb::gobgp_api_client::GobgpApiClient;
use pb::google::protobuf::Any;

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one RPC may take, streams included, unless changed with [`GobgpApi::with_timeout`].
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(60);
/// Paths per `AddPathStream` message.
const PATHS_PER_MESSAGE: usize = 256;
const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

pub type Result<T, E = GobgpApiError> = std::result::Result<T, E>;

/// Every error names the API address and, for a call, the RPC.
#[derive(Debug, Error)]
pub enum GobgpApiError {
    #[error("gobgpd API address {addr:?} is invalid: {reason}")]
    Address { addr: String, reason: String },
    #[error("gobgpd API at {addr}: cannot connect: {message}")]
    Connect { addr: String, message: String },
    #[error("gobgpd API at {addr}: {rpc} failed: {message} (gRPC {code:?})")]
    Rpc {
        addr: String,
        rpc: &'static str,
        code: tonic::Code,
        message: String,
    },
    #[error("gobgpd API at {addr}: {rpc} timed out after {timeout:?}")]
    Timeout {
        addr: String,
        rpc: &'static str,
        timeout: Duration,
    },
    /// gobgpd answered something this client does not understand.
    #[error("gobgpd API at {addr}: {rpc}: unexpected answer: {message}")]
    Unexpected {
        addr: String,
        rpc: &'static str,
        message: String,
    },
    /// The caller asked for something contradictory (two next hops for one prefix, two specs for
    /// one neighbor).
    #[error("gobgpd API at {addr}: {rpc}: invalid request: {message}")]
    Invalid {
        addr: String,
        rpc: &'static str,
        message: String,
    },
    /// gobgpd did not take a neighbor change that it accepted.
    #[error("gobgpd API at {addr}: {rpc}: neighbor {peer} still differs after the fix: {fields}")]
    PeerMismatch {
        addr: String,
        rpc: &'static str,
        peer: IpAddr,
        fields: String,
    },
}

impl GobgpApiError {
    /// True when gobgpd could not be reached (not running, restarting): reconnect and retry.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            GobgpApiError::Connect { .. }
                | GobgpApiError::Timeout { .. }
                | GobgpApiError::Rpc {
                    code: tonic::Code::Unavailable | tonic::Code::Cancelled,
                    ..
                }
        )
    }
}

/// A BGP session state as gobgpd reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
    Unknown,
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionState::Idle => "idle",
            SessionState::Connect => "connect",
            SessionState::Active => "active",
            SessionState::OpenSent => "opensent",
            SessionState::OpenConfirm => "openconfirm",
            SessionState::Established => "established",
            SessionState::Unknown => "unknown",
        })
    }
}

/// One neighbor as gobgpd reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub address: IpAddr,
    pub peer_as: u32,
    pub session_state: SessionState,
    pub admin_down: bool,
    /// How long the session has been established; `None` when it is not.
    pub uptime: Option<Duration>,
    /// The configured, enabled address families.
    pub families: Vec<Family>,
    /// Paths received from this neighbor (all families).
    pub received: u64,
    /// Paths accepted from this neighbor (all families).
    pub accepted: u64,
}

/// The wanted configuration of one neighbor, in the terms gobgpd reports back.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerSpec {
    pub address: IpAddr,
    pub peer_as: u32,
    /// Empty means the family of the address, as gobgpd defaults it.
    pub families: Vec<Family>,
    /// Seconds; 0 means gobgpd's default (90).
    pub hold_time: u64,
    /// Seconds; 0 means a third of the hold time.
    pub keepalive: u64,
    pub password: Option<String>,
    pub passive: bool,
    /// eBGP multihop with this TTL; `None` is directly connected.
    pub ebgp_multihop_ttl: Option<u8>,
    /// Graceful restart `(restart_time, deferral_time)` in seconds, enabled for every family of
    /// the neighbor; `None` is disabled.
    pub graceful_restart: Option<(u32, u32)>,
    /// The pinned local (source) address of the session; `None` lets gobgpd choose.
    pub local_address: Option<IpAddr>,
}

impl fmt::Debug for PeerSpec {
    /// Never shows the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerSpec")
            .field("address", &self.address)
            .field("peer_as", &self.peer_as)
            .field("families", &self.families)
            .field("hold_time", &self.hold_time)
            .field("keepalive", &self.keepalive)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("passive", &self.passive)
            .field("ebgp_multihop_ttl", &self.ebgp_multihop_ttl)
            .field("graceful_restart", &self.graceful_restart)
            .field("local_address", &self.local_address)
            .finish()
    }
}

impl PeerSpec {
    /// The neighbors of an intent, as `templates/gobgpd.toml.j2` renders them: multihop only for
    /// eBGP neighbors when the TTL is above 1, graceful restart on the neighbor's own families.
    pub fn from_intent(intent: &Intent) -> Vec<PeerSpec> {
        let bgp = &intent.bgp;
        let local_as = intent.speaker.local_as.0;
        let gr = bgp.graceful_restart;
        intent
            .neighbors
            .iter()
            .map(|n| PeerSpec {
                address: n.address,
                peer_as: n.remote_as.0,
                families: n.families.clone(),
                hold_time: bgp.hold_time,
                keepalive: bgp.keepalive,
                password: bgp.password.as_ref().map(|p| p.expose().to_string()),
                passive: bgp.passive,
                ebgp_multihop_ttl: (bgp.ebgp_multihop_ttl > 1 && n.remote_as.0 != local_as)
                    .then_some(bgp.ebgp_multihop_ttl),
                graceful_restart: gr.enabled.then(|| {
                    (
                        u32::try_from(gr.restart_time).unwrap_or(u32::MAX),
                        u32::try_from(gr.deferral_time).unwrap_or(u32::MAX),
                    )
                }),
                local_address: n.local_address,
            })
            .collect()
    }

    fn effective_families(&self) -> BTreeSet<Family> {
        if self.families.is_empty() {
            BTreeSet::from([Family::of(self.address)])
        } else {
            self.families.iter().copied().collect()
        }
    }

    fn effective_hold_time(&self) -> u64 {
        if self.hold_time == 0 {
            90
        } else {
            self.hold_time
        }
    }

    fn effective_keepalive(&self) -> u64 {
        if self.keepalive == 0 {
            self.effective_hold_time() / 3
        } else {
            self.keepalive
        }
    }

    fn effective_graceful_restart(&self) -> Option<(u32, u32)> {
        self.graceful_restart.map(|(restart, deferral)| {
            let restart = if restart == 0 {
                u32::try_from(self.effective_hold_time()).unwrap_or(u32::MAX)
            } else {
                restart
            };
            (restart, if deferral == 0 { 360 } else { deferral })
        })
    }

    /// The names of the settings where `peer` (as ListPeer reports it) differs from this spec.
    fn differences(&self, peer: &apipb::Peer) -> Vec<&'static str> {
        let mut out = Vec::new();
        let conf = peer.conf.clone().unwrap_or_default();
        if conf.peer_asn != self.peer_as {
            out.push("peer-as");
        }
        if conf.auth_password != self.password.as_deref().unwrap_or("") {
            out.push("password");
        }
        let timers = peer
            .timers
            .as_ref()
            .and_then(|t| t.config)
            .unwrap_or_default();
        if timers.hold_time != self.effective_hold_time()
            || timers.keepalive_interval != self.effective_keepalive()
        {
            out.push("timers");
        }
        let passive = peer.transport.as_ref().is_some_and(|t| t.passive_mode);
        if passive != self.passive {
            out.push("passive-mode");
        }
        if let Some(local) = self.local_address {
            let running = peer
                .transport
                .as_ref()
                .and_then(|t| t.local_address.parse::<IpAddr>().ok());
            if running != Some(local) {
                out.push("local-address");
            }
        }
        let multihop = peer.ebgp_multihop.unwrap_or_default();
        let multihop_ok = match self.ebgp_multihop_ttl {
            Some(ttl) => multihop.enabled && multihop.multihop_ttl == u32::from(ttl),
            None => !multihop.enabled,
        };
        if !multihop_ok {
            out.push("ebgp-multihop");
        }
        let gr = peer.graceful_restart.clone().unwrap_or_default();
        let gr_ok = match self.effective_graceful_restart() {
            Some((restart, deferral)) => {
                gr.enabled && gr.restart_time == restart && gr.deferral_time == deferral
            }
            None => !gr.enabled,
        };
        let mp_gr_ok = peer.afi_safis.iter().all(|a| {
            let enabled = a
                .mp_graceful_restart
                .and_then(|m| m.config)
                .is_some_and(|c| c.enabled);
            enabled == self.graceful_restart.is_some()
        });
        if !gr_ok || !mp_gr_ok {
            out.push("graceful-restart");
        }
        let families: BTreeSet<Family> = peer
            .afi_safis
            .iter()
            .filter_map(|a| a.config.as_ref())
            .filter(|c| c.enabled)
            .filter_map(|c| c.family.and_then(family_from_api))
            .collect();
        let unknown_family = peer.afi_safis.iter().any(|a| {
            a.config
                .as_ref()
                .is_some_and(|c| c.enabled && c.family.and_then(family_from_api).is_none())
        });
        if families != self.effective_families() || unknown_family {
            out.push("families");
        }
        out
    }

    /// The API form of this spec. `current` is the running neighbor when this is an update: the
    /// settings bgpgen does not manage are copied from it, and the defaults gobgpd filled in are
    /// repeated, so that `UpdatePeer` sees only the intended change.
    fn to_api(&self, current: Option<&apipb::Peer>) -> apipb::Peer {
        let gr = self.effective_graceful_restart();
        let cur_conf = current.and_then(|p| p.conf.clone());
        let mut conf = cur_conf.clone().unwrap_or_default();
        conf.neighbor_address = self.address.to_string();
        conf.peer_asn = self.peer_as;
        conf.auth_password = self.password.clone().unwrap_or_default();
        if cur_conf.is_some() {
            conf.r#type = if conf.local_asn == self.peer_as {
                apipb::PeerType::Internal
            } else {
                apipb::PeerType::External
            } as i32;
        }
        let cur_timers = current
            .and_then(|p| p.timers.as_ref())
            .and_then(|t| t.config)
            .unwrap_or_default();
        let cur_transport = current
            .and_then(|p| p.transport.clone())
            .unwrap_or_default();
        let cur_gr = current
            .and_then(|p| p.graceful_restart.clone())
            .unwrap_or_default();
        let unspecified = match self.address {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        apipb::Peer {
            conf: Some(conf),
            ebgp_multihop: Some(apipb::EbgpMultihop {
                enabled: self.ebgp_multihop_ttl.is_some(),
                multihop_ttl: self.ebgp_multihop_ttl.map_or(0, u32::from),
            }),
            state: None,
            timers: Some(apipb::Timers {
                config: Some(apipb::TimersConfig {
                    connect_retry: cur_timers.connect_retry,
                    hold_time: self.effective_hold_time(),
                    keepalive_interval: self.effective_keepalive(),
                    minimum_advertisement_interval: cur_timers.minimum_advertisement_interval,
                    idle_hold_time_after_reset: cur_timers.idle_hold_time_after_reset,
                }),
                state: None,
            }),
            transport: Some(apipb::Transport {
                // Unpinned, gobgpd's default is the unspecified address (ListPeer reports the
                // session's address instead while it is established).
                local_address: match self.local_address {
                    Some(local) => local.to_string(),
                    None if current.is_some() => unspecified.to_string(),
                    None => String::new(),
                },
                local_port: cur_transport.local_port,
                passive_mode: self.passive,
                remote_port: cur_transport.remote_port,
                bind_interface: cur_transport.bind_interface,
                ..Default::default()
            }),
            graceful_restart: Some(apipb::GracefulRestart {
                enabled: gr.is_some(),
                restart_time: gr.map_or(0, |g| g.0),
                deferral_time: gr.map_or(0, |g| g.1),
                helper_only: cur_gr.helper_only,
                notification_enabled: cur_gr.notification_enabled,
                longlived_enabled: cur_gr.longlived_enabled,
                ..Default::default()
            }),
            afi_safis: self
                .effective_families()
                .into_iter()
                .map(|f| apipb::AfiSafi {
                    mp_graceful_restart: Some(apipb::MpGracefulRestart {
                        config: Some(apipb::MpGracefulRestartConfig {
                            enabled: gr.is_some(),
                        }),
                        state: None,
                    }),
                    config: Some(apipb::AfiSafiConfig {
                        family: Some(family_to_api(f)),
                        enabled: true,
                    }),
                    state: None,
                })
                .collect(),
        }
    }
}

/// What [`GobgpApi::sync_paths`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Paths sent: new prefixes, and prefixes whose next hop changed (gobgpd replaces the old
    /// path of the same prefix; no separate withdrawal is sent for them).
    pub added: usize,
    /// Prefixes withdrawn.
    pub deleted: usize,
    /// Paths already present as wanted: nothing sent.
    pub kept: usize,
}

/// What [`GobgpApi::ensure_peers`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerFix {
    pub added: usize,
    /// Neighbors changed: in place (timers only) or deleted and added again.
    pub updated: usize,
    pub deleted: usize,
    /// One line per change, for logs: `added 192.0.2.10`, `updated 192.0.2.10 (timers)`, ...
    pub changes: Vec<String>,
}

impl PeerFix {
    pub fn is_noop(&self) -> bool {
        self.added + self.updated + self.deleted == 0
    }
}

/// A connection to gobgpd's gRPC API. Cheap to clone; calls can run concurrently.
#[derive(Clone)]
pub struct GobgpApi {
    addr: String,
    client: GobgpApiClient<Channel>,
    timeout: Duration,
}

impl fmt::Debug for GobgpApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GobgpApi")
            .field("addr", &self.addr)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Where gobgpd's API listens: `HOST:PORT`, or `unix:///PATH` (a Unix socket, as gobgpd's
/// `--api-hosts unix:///PATH` takes it).
enum Target {
    Tcp(Endpoint),
    Unix(Endpoint, std::path::PathBuf),
}

fn target(addr: &str) -> Result<Target> {
    let bad = |reason: &str| GobgpApiError::Address {
        addr: addr.to_string(),
        reason: reason.to_string(),
    };
    if let Some(path) = addr.strip_prefix("unix://") {
        if !path.starts_with('/') || path.len() < 2 {
            return Err(bad("expected unix:///ABSOLUTE/PATH"));
        }
        // The URI only names the HTTP/2 authority; the connector below dials the socket.
        let endpoint = Endpoint::from_static("http://gobgpd").connect_timeout(CONNECT_TIMEOUT);
        return Ok(Target::Unix(endpoint, std::path::PathBuf::from(path)));
    }
    if addr.contains("://") {
        return Err(bad("expected HOST:PORT or unix:///PATH"));
    }
    let uri: tonic::codegen::http::Uri = format!("http://{addr}")
        .parse()
        .map_err(|_| bad("expected HOST:PORT ([ADDRESS]:PORT for IPv6) or unix:///PATH"))?;
    if uri.port_u16().is_none() || uri.path() != "/" || uri.host().is_none_or(str::is_empty) {
        return Err(bad(
            "expected HOST:PORT ([ADDRESS]:PORT for IPv6) or unix:///PATH",
        ));
    }
    Ok(Target::Tcp(
        Endpoint::from(uri)
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true),
    ))
}

/// Dials gobgpd's Unix socket for tonic (its own connector: tonic only knows TCP).
fn unix_connector(
    path: std::path::PathBuf,
) -> impl tower::Service<
    tonic::codegen::http::Uri,
    Response = hyper_util::rt::TokioIo<tokio::net::UnixStream>,
    Error = std::io::Error,
    Future = impl Future<Output = std::io::Result<hyper_util::rt::TokioIo<tokio::net::UnixStream>>>
             + Send,
> + Send
+ 'static {
    tower::service_fn(move |_: tonic::codegen::http::Uri| {
        let path = path.clone();
        async move {
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                tokio::net::UnixStream::connect(path).await?,
            ))
        }
    })
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

impl GobgpApi {
    /// Connects to gobgpd's API at `HOST:PORT` (a `SocketAddr` or a string such as
    /// `127.0.0.1:50051`) or `unix:///PATH`, failing after [`CONNECT_TIMEOUT`] when nothing answers. The channel
    /// reconnects by itself when gobgpd restarts; a call made while it is down fails with an
    /// error whose [`GobgpApiError::is_unavailable`] is true.
    pub async fn connect(addr: impl fmt::Display) -> Result<GobgpApi> {
        let addr = addr.to_string();
        let channel = match target(&addr)? {
            Target::Tcp(endpoint) => endpoint.connect().await,
            Target::Unix(endpoint, path) => {
                endpoint.connect_with_connector(unix_connector(path)).await
            }
        }
        .map_err(|e| GobgpApiError::Connect {
            addr: addr.clone(),
            message: error_chain(&e),
        })?;
        Ok(GobgpApi::with_channel(addr, channel))
    }

    /// Like [`GobgpApi::connect`], but connects on the first call: it fails only on a malformed
    /// address.
    pub fn connect_lazy(addr: impl fmt::Display) -> Result<GobgpApi> {
        let addr = addr.to_string();
        let channel = match target(&addr)? {
            Target::Tcp(endpoint) => endpoint.connect_lazy(),
            Target::Unix(endpoint, path) => {
                endpoint.connect_with_connector_lazy(unix_connector(path))
            }
        };
        Ok(GobgpApi::with_channel(addr, channel))
    }

    fn with_channel(addr: String, channel: Channel) -> GobgpApi {
        GobgpApi {
            addr,
            // gobgpd's default gRPC limit for received messages is 4 MiB; ListPath answers are
            // one destination per message, well below that.
            client: GobgpApiClient::new(channel).max_decoding_message_size(64 << 20),
            timeout: DEFAULT_RPC_TIMEOUT,
        }
    }

    /// Sets the time limit of each call (the whole stream for streaming calls).
    pub fn with_timeout(mut self, timeout: Duration) -> GobgpApi {
        self.timeout = timeout;
        self
    }

    /// The API address this client talks to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn rpc_error(&self, rpc: &'static str, status: tonic::Status) -> GobgpApiError {
        GobgpApiError::Rpc {
            addr: self.addr.clone(),
            rpc,
            code: status.code(),
            message: status.message().to_string(),
        }
    }

    fn unexpected(&self, rpc: &'static str, message: impl Into<String>) -> GobgpApiError {
        GobgpApiError::Unexpected {
            addr: self.addr.clone(),
            rpc,
            message: message.into(),
        }
    }

    fn invalid(&self, rpc: &'static str, message: impl Into<String>) -> GobgpApiError {
        GobgpApiError::Invalid {
            addr: self.addr.clone(),
            rpc,
            message: message.into(),
        }
    }

    /// Runs one call under the time limit, mapping a gRPC status to an error naming the RPC.
    async fn call<T, F>(&self, rpc: &'static str, fut: F) -> Result<T>
    where
        F: Future<Output = std::result::Result<T, tonic::Status>>,
    {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(status)) => Err(self.rpc_error(rpc, status)),
            Err(_) => Err(GobgpApiError::Timeout {
                addr: self.addr.clone(),
                rpc,
                timeout: self.timeout,
            }),
        }
    }

    /// gobgpd's `[global]`: `(AS, router ID, listen port)`; the port is -1 when it does not
    /// listen.
    pub async fn global(&self) -> Result<(u32, Ipv4Addr, i32)> {
        const RPC: &str = "GetBgp";
        let mut client = self.client.clone();
        let rsp = self
            .call(
                RPC,
                async move { client.get_bgp(apipb::GetBgpRequest {}).await },
            )
            .await?
            .into_inner();
        let g = rsp
            .global
            .ok_or_else(|| self.unexpected(RPC, "no global section (is BGP started?)"))?;
        let router_id = g.router_id.parse::<Ipv4Addr>().map_err(|_| {
            self.unexpected(RPC, format!("router ID {:?} is not IPv4", g.router_id))
        })?;
        Ok((g.asn, router_id, g.listen_port))
    }

    // ---- paths ----

    /// The paths of `family` that this speaker originated (added through the API), with the next
    /// hop they were added with (`None` for the unspecified one). Paths learned from peers are
    /// left out.
    pub async fn list_local_paths(&self, family: Family) -> Result<Vec<Path>> {
        const RPC: &str = "ListPath";
        let mut client = self.client.clone();
        let request = apipb::ListPathRequest {
            table_type: apipb::TableType::Global as i32,
            family: Some(family_to_api(family)),
            ..Default::default()
        };
        let raw = self
            .call(RPC, async move {
                let mut stream = client.list_path(request).await?.into_inner();
                let mut paths = Vec::new();
                while let Some(rsp) = stream.message().await? {
                    if let Some(dst) = rsp.destination {
                        paths.extend(dst.paths.into_iter().filter(is_local));
                    }
                }
                Ok(paths)
            })
            .await?;
        let mut out = raw
            .iter()
            .map(|p| path_from_api(p).map_err(|m| self.unexpected(RPC, m)))
            .collect::<Result<Vec<_>>>()?;
        out.sort();
        Ok(out)
    }

    /// Announces `paths` through one `AddPathStream` call. A path without next hop gets the
    /// unspecified one, so gobgpd sends each peer the session's local address. Adding a prefix
    /// that is already announced replaces its path (new next hop).
    pub async fn add_paths(&self, paths: &[Path]) -> Result<()> {
        let items: Vec<(Path, bool)> = paths.iter().map(|p| (*p, false)).collect();
        self.stream_paths(&items).await
    }

    /// Withdraws the prefixes of `paths` (the next hop does not matter), through one
    /// `AddPathStream` call carrying withdrawals.
    pub async fn delete_paths(&self, paths: &[Path]) -> Result<()> {
        let items: Vec<(Path, bool)> = paths.iter().map(|p| (*p, true)).collect();
        self.stream_paths(&items).await
    }

    /// Withdraws every path this speaker originated, in one family or in all of them, with one
    /// unary `DeletePath`.
    pub async fn delete_all_local_paths(&self, family: Option<Family>) -> Result<()> {
        let mut client = self.client.clone();
        let request = apipb::DeletePathRequest {
            table_type: apipb::TableType::Global as i32,
            family: family.map(family_to_api),
            ..Default::default()
        };
        self.call(
            "DeletePath",
            async move { client.delete_path(request).await },
        )
        .await?;
        Ok(())
    }

    /// Sends `(path, is_withdraw)` items, in order, in one client stream.
    async fn stream_paths(&self, items: &[(Path, bool)]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let messages: Vec<apipb::AddPathStreamRequest> = items
            .chunks(PATHS_PER_MESSAGE)
            .map(|chunk| apipb::AddPathStreamRequest {
                table_type: apipb::TableType::Global as i32,
                vrf_id: String::new(),
                paths: chunk.iter().map(|(p, w)| path_to_api(p, *w)).collect(),
            })
            .collect();
        let mut client = self.client.clone();
        self.call("AddPathStream", async move {
            client
                .add_path_stream(tonic::codegen::tokio_stream::iter(messages))
                .await
        })
        .await?;
        Ok(())
    }

    /// Makes this speaker's announced paths (both families) equal to `wanted`: lists them, then
    /// sends only the difference (withdrawals of extra prefixes, then new or changed paths) in one
    /// `AddPathStream`.
    pub async fn sync_paths(&self, wanted: &[Path]) -> Result<SyncStats> {
        let want = self.normalized(wanted)?;
        let mut have = self.list_local_paths(Family::Ipv4Unicast).await?;
        have.extend(self.list_local_paths(Family::Ipv6Unicast).await?);
        let have = self.normalized(&have)?;
        self.send_difference(&have, &want).await
    }

    /// Sends the difference from `previous` (what this client pushed last, trusted without
    /// listing gobgpd's table) to `wanted`: O(change) work for gobgpd, whatever the size of the
    /// table. Use [`GobgpApi::sync_paths`] when gobgpd's state is not known (start, restart).
    pub async fn push_difference(&self, previous: &[Path], wanted: &[Path]) -> Result<SyncStats> {
        let have = self.normalized(previous)?;
        let want = self.normalized(wanted)?;
        self.send_difference(&have, &want).await
    }

    /// Sorted by prefix, host bits cleared, duplicates removed; a prefix listed with two next
    /// hops is refused.
    fn normalized(&self, paths: &[Path]) -> Result<Vec<Path>> {
        let mut out: Vec<Path> = paths
            .iter()
            .map(|p| Path {
                prefix: p.prefix.trunc(),
                next_hop: p.next_hop,
            })
            .collect();
        // Usually already sorted (routes.txt is): then this is one linear pass.
        out.sort_unstable();
        out.dedup();
        if let Some(w) = out.windows(2).find(|w| w[0].prefix == w[1].prefix) {
            return Err(self.invalid(
                "AddPathStream",
                format!(
                    "{} is listed with two next hops ({:?} and {:?})",
                    w[0].prefix, w[0].next_hop, w[1].next_hop
                ),
            ));
        }
        Ok(out)
    }

    /// Both sides sorted by prefix, one path per prefix (see [`GobgpApi::normalized`]).
    async fn send_difference(&self, have: &[Path], want: &[Path]) -> Result<SyncStats> {
        let mut items = Vec::new();
        let mut stats = SyncStats::default();
        let (mut h, mut w) = (have.iter().peekable(), want.iter().peekable());
        loop {
            let order = match (h.peek(), w.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(old), Some(new)) => old.prefix.cmp(&new.prefix),
            };
            match order {
                Ordering::Less => {
                    if let Some(old) = h.next() {
                        items.push((*old, true));
                        stats.deleted += 1;
                    }
                }
                Ordering::Greater => {
                    if let Some(new) = w.next() {
                        items.push((*new, false));
                        stats.added += 1;
                    }
                }
                Ordering::Equal => {
                    if let (Some(old), Some(new)) = (h.next(), w.next()) {
                        if old.next_hop == new.next_hop {
                            stats.kept += 1;
                        } else {
                            // Same prefix, new next hop: the new path replaces the old one.
                            items.push((*new, false));
                            stats.added += 1;
                        }
                    }
                }
            }
        }
        self.stream_paths(&items).await?;
        Ok(stats)
    }

    /// The number of paths in gobgpd's global table for `family` (originated and learned), from
    /// `GetTable`: cheap, for noticing a restarted gobgpd that lost the pushed paths.
    pub async fn table_paths(&self, family: Family) -> Result<u64> {
        let mut client = self.client.clone();
        let request = apipb::GetTableRequest {
            table_type: apipb::TableType::Global as i32,
            family: Some(family_to_api(family)),
            name: String::new(),
        };
        let rsp = self
            .call("GetTable", async move { client.get_table(request).await })
            .await?
            .into_inner();
        Ok(rsp.num_path)
    }

    /// The number of paths gobgpd's global table holds for exactly `prefix` (originated and
    /// learned), from one `ListPath` with an exact-prefix lookup: cheap whatever the size of the
    /// table, for watching one prefix appear or disappear (the latency benchmark polls it).
    pub async fn prefix_paths(&self, prefix: IpNet) -> Result<usize> {
        let mut client = self.client.clone();
        let request = apipb::ListPathRequest {
            table_type: apipb::TableType::Global as i32,
            family: Some(family_to_api(Family::of(prefix.addr()))),
            prefixes: vec![apipb::TableLookupPrefix {
                prefix: prefix.to_string(),
                r#type: apipb::table_lookup_prefix::Type::Exact as i32,
            }],
            ..Default::default()
        };
        self.call("ListPath", async move {
            let mut stream = client.list_path(request).await?.into_inner();
            let mut count = 0;
            while let Some(rsp) = stream.message().await? {
                count += rsp.destination.map_or(0, |d| d.paths.len());
            }
            Ok(count)
        })
        .await
    }

    // ---- peers ----

    async fn list_peers_raw(&self) -> Result<Vec<apipb::Peer>> {
        let mut client = self.client.clone();
        self.call("ListPeer", async move {
            let mut stream = client
                .list_peer(apipb::ListPeerRequest::default())
                .await?
                .into_inner();
            let mut peers = Vec::new();
            while let Some(rsp) = stream.message().await? {
                peers.extend(rsp.peer);
            }
            Ok(peers)
        })
        .await
    }

    /// The neighbors gobgpd has, sorted by address.
    pub async fn list_peers(&self) -> Result<Vec<PeerStatus>> {
        let now = SystemTime::now();
        let mut out = Vec::new();
        for p in self.list_peers_raw().await? {
            let Some(address) = peer_address(&p) else {
                continue;
            };
            let state = p.state.clone().unwrap_or_default();
            let session_state = match state.session_state() {
                apipb::peer_state::SessionState::Idle => SessionState::Idle,
                apipb::peer_state::SessionState::Connect => SessionState::Connect,
                apipb::peer_state::SessionState::Active => SessionState::Active,
                apipb::peer_state::SessionState::Opensent => SessionState::OpenSent,
                apipb::peer_state::SessionState::Openconfirm => SessionState::OpenConfirm,
                apipb::peer_state::SessionState::Established => SessionState::Established,
                apipb::peer_state::SessionState::Unknown => SessionState::Unknown,
            };
            let uptime = p
                .timers
                .as_ref()
                .and_then(|t| t.state.as_ref())
                .and_then(|s| s.uptime)
                .filter(|_| session_state == SessionState::Established)
                .and_then(|ts| {
                    let since = UNIX_EPOCH + Duration::from_secs(u64::try_from(ts.seconds).ok()?);
                    Some(now.duration_since(since).unwrap_or_default())
                });
            let mut families = Vec::new();
            let (mut received, mut accepted) = (0, 0);
            for a in &p.afi_safis {
                if let Some(c) = &a.config
                    && c.enabled
                    && let Some(f) = c.family.and_then(family_from_api)
                {
                    families.push(f);
                }
                if let Some(s) = &a.state {
                    received += s.received;
                    accepted += s.accepted;
                }
            }
            families.sort();
            out.push(PeerStatus {
                address,
                peer_as: p.conf.as_ref().map_or(state.peer_asn, |c| c.peer_asn),
                session_state,
                admin_down: state.admin_state() == apipb::peer_state::AdminState::Down,
                uptime,
                families,
                received,
                accepted,
            });
        }
        out.sort_by_key(|p| p.address);
        Ok(out)
    }

    async fn add_peer(&self, spec: &PeerSpec) -> Result<()> {
        let mut client = self.client.clone();
        let request = apipb::AddPeerRequest {
            peer: Some(spec.to_api(None)),
        };
        self.call("AddPeer", async move { client.add_peer(request).await })
            .await?;
        Ok(())
    }

    /// Hard-resets a session, so that changed settings (hold time) are negotiated in a new OPEN.
    pub async fn reset_peer(&self, address: String) -> Result<()> {
        let mut client = self.client.clone();
        let request = apipb::ResetPeerRequest {
            address,
            communication: "bgpgen: session options changed".into(),
            soft: false,
            direction: 0,
        };
        self.call("ResetPeer", async move { client.reset_peer(request).await })
            .await?;
        Ok(())
    }

    async fn delete_peer(&self, address: String) -> Result<()> {
        let mut client = self.client.clone();
        let request = apipb::DeletePeerRequest {
            address,
            interface: String::new(),
        };
        self.call(
            "DeletePeer",
            async move { client.delete_peer(request).await },
        )
        .await?;
        Ok(())
    }

    async fn update_peer(&self, spec: &PeerSpec, current: &apipb::Peer) -> Result<()> {
        let mut client = self.client.clone();
        let request = apipb::UpdatePeerRequest {
            peer: Some(spec.to_api(Some(current))),
            do_soft_reset_in: false,
        };
        self.call(
            "UpdatePeer",
            async move { client.update_peer(request).await },
        )
        .await?;
        Ok(())
    }

    /// Makes gobgpd's neighbors equal to `wanted`: adds the missing ones, deletes the extra
    /// ones, and fixes the ones whose reported settings differ (timers in place with
    /// `UpdatePeer`; anything else by deleting and adding the neighbor, which resets its session).
    /// Neighbors that already match are not touched. Afterwards the neighbors are read back, and
    /// one that still differs is an error.
    pub async fn ensure_peers(&self, wanted: &[PeerSpec]) -> Result<PeerFix> {
        let mut by_addr: BTreeMap<IpAddr, &PeerSpec> = BTreeMap::new();
        for spec in wanted {
            if by_addr.insert(spec.address, spec).is_some() {
                return Err(self.invalid(
                    "AddPeer",
                    format!("neighbor {} is specified twice", spec.address),
                ));
            }
        }
        let current: BTreeMap<IpAddr, apipb::Peer> = self
            .list_peers_raw()
            .await?
            .into_iter()
            .filter_map(|p| Some((peer_address(&p)?, p)))
            .collect();
        let mut fix = PeerFix::default();
        for (addr, peer) in &current {
            if !by_addr.contains_key(addr) {
                let raw = peer
                    .conf
                    .as_ref()
                    .map_or_else(|| addr.to_string(), |c| c.neighbor_address.clone());
                self.delete_peer(raw).await?;
                fix.deleted += 1;
                fix.changes.push(format!("deleted {addr}"));
            }
        }
        for (addr, spec) in &by_addr {
            match current.get(addr) {
                None => {
                    self.add_peer(spec).await?;
                    fix.added += 1;
                    fix.changes.push(format!("added {addr}"));
                }
                Some(peer) => {
                    let diff = spec.differences(peer);
                    if diff.is_empty() {
                        continue;
                    }
                    if diff == ["timers"] {
                        // The session keeps the hold time negotiated in its OPEN until it is
                        // reset: the caller decides (see `reset_peer`).
                        self.update_peer(spec, peer).await?;
                    } else {
                        let raw = peer
                            .conf
                            .as_ref()
                            .map_or_else(|| addr.to_string(), |c| c.neighbor_address.clone());
                        self.delete_peer(raw).await?;
                        self.add_peer(spec).await?;
                    }
                    fix.updated += 1;
                    fix.changes
                        .push(format!("updated {addr} ({})", diff.join(", ")));
                }
            }
        }
        if !fix.is_noop() {
            let after: BTreeMap<IpAddr, apipb::Peer> = self
                .list_peers_raw()
                .await?
                .into_iter()
                .filter_map(|p| Some((peer_address(&p)?, p)))
                .collect();
            for (addr, spec) in &by_addr {
                let fields = match after.get(addr) {
                    None => "missing".to_string(),
                    Some(peer) => spec.differences(peer).join(", "),
                };
                if !fields.is_empty() {
                    return Err(GobgpApiError::PeerMismatch {
                        addr: self.addr.clone(),
                        rpc: "ListPeer",
                        peer: *addr,
                        fields,
                    });
                }
            }
            if let Some(extra) = after.keys().find(|a| !by_addr.contains_key(a)) {
                return Err(GobgpApiError::PeerMismatch {
                    addr: self.addr.clone(),
                    rpc: "ListPeer",
                    peer: *extra,
                    fields: "not deleted".to_string(),
                });
            }
        }
        Ok(fix)
    }
}

// ---- conversions ----

fn family_to_api(f: Family) -> apipb::Family {
    let afi = match f {
        Family::Ipv4Unicast => apipb::family::Afi::Ip,
        Family::Ipv6Unicast => apipb::family::Afi::Ip6,
    };
    apipb::Family {
        afi: afi as i32,
        safi: apipb::family::Safi::Unicast as i32,
    }
}

fn family_from_api(f: apipb::Family) -> Option<Family> {
    match (f.afi(), f.safi()) {
        (apipb::family::Afi::Ip, apipb::family::Safi::Unicast) => Some(Family::Ipv4Unicast),
        (apipb::family::Afi::Ip6, apipb::family::Safi::Unicast) => Some(Family::Ipv6Unicast),
        _ => None,
    }
}

fn peer_address(p: &apipb::Peer) -> Option<IpAddr> {
    p.conf
        .as_ref()
        .map(|c| c.neighbor_address.as_str())
        .filter(|a| !a.is_empty())
        .or_else(|| p.state.as_ref().map(|s| s.neighbor_address.as_str()))?
        .parse()
        .ok()
}

/// A path this speaker originated: gobgpd gives locally originated paths a source without
/// address and reports it as `neighbor_ip: "<nil>"`; a learned path has the peer's address.
fn is_local(p: &apipb::Path) -> bool {
    !p.is_withdraw && p.neighbor_ip.parse::<IpAddr>().is_err()
}

/// A protobuf message that travels in `google.protobuf.Any`, under its upstream name.
trait AnyMessage: Message + Default + Sized {
    const NAME: &'static str;

    fn pack(&self) -> Any {
        Any {
            type_url: format!("{TYPE_URL_PREFIX}{}", Self::NAME),
            value: self.encode_to_vec(),
        }
    }

    /// `None` when `any` holds another type; an error when it does not decode.
    fn unpack(any: &Any) -> Option<std::result::Result<Self, prost::DecodeError>> {
        let name = any.type_url.rsplit('/').next().unwrap_or_default();
        (name == Self::NAME).then(|| Self::decode(any.value.as_slice()))
    }
}

impl AnyMessage for apipb::OriginAttribute {
    const NAME: &'static str = "apipb.OriginAttribute";
}
impl AnyMessage for apipb::NextHopAttribute {
    const NAME: &'static str = "apipb.NextHopAttribute";
}
impl AnyMessage for apipb::MpReachNlriAttribute {
    const NAME: &'static str = "apipb.MpReachNLRIAttribute";
}
impl AnyMessage for apipb::IpAddressPrefix {
    const NAME: &'static str = "apipb.IPAddressPrefix";
}

/// The API form of a unicast path; see the module documentation for the next-hop encoding.
fn path_to_api(p: &Path, withdraw: bool) -> apipb::Path {
    let prefix = p.prefix.trunc();
    let family = family_to_api(Family::of(prefix.addr()));
    let nlri = apipb::IpAddressPrefix {
        prefix_len: u32::from(prefix.prefix_len()),
        prefix: prefix.addr().to_string(),
    }
    .pack();
    let next_hop = p.next_hop.unwrap_or(match prefix {
        IpNet::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpNet::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    let next_hop_attr = match (prefix, next_hop) {
        (IpNet::V4(_), IpAddr::V4(nh)) => apipb::NextHopAttribute {
            next_hop: nh.to_string(),
        }
        .pack(),
        _ => apipb::MpReachNlriAttribute {
            family: Some(family),
            next_hops: vec![next_hop.to_string()],
            nlris: vec![nlri.clone()],
        }
        .pack(),
    };
    apipb::Path {
        nlri: Some(nlri),
        pattrs: vec![
            // IGP.
            apipb::OriginAttribute { origin: 0 }.pack(),
            next_hop_attr,
        ],
        is_withdraw: withdraw,
        family: Some(family),
        ..Default::default()
    }
}

/// The prefix and next hop of a unicast path as ListPath reports it.
fn path_from_api(p: &apipb::Path) -> std::result::Result<Path, String> {
    let nlri = p.nlri.as_ref().ok_or("a path without NLRI")?;
    let nlri = apipb::IpAddressPrefix::unpack(nlri)
        .ok_or_else(|| format!("NLRI of type {:?}, expected IPAddressPrefix", nlri.type_url))?
        .map_err(|e| format!("bad IPAddressPrefix: {e}"))?;
    let addr: IpAddr = nlri
        .prefix
        .parse()
        .map_err(|_| format!("bad prefix address {:?}", nlri.prefix))?;
    let len = u8::try_from(nlri.prefix_len).map_err(|_| "bad prefix length".to_string())?;
    let prefix = IpNet::new(addr, len)
        .map_err(|_| format!("bad prefix {}/{}", nlri.prefix, nlri.prefix_len))?;
    let mut next_hop: Option<String> = None;
    for attr in &p.pattrs {
        if let Some(nh) = apipb::NextHopAttribute::unpack(attr) {
            next_hop = Some(
                nh.map_err(|e| format!("bad NextHopAttribute: {e}"))?
                    .next_hop,
            );
        } else if let Some(mp) = apipb::MpReachNlriAttribute::unpack(attr) {
            let mp = mp.map_err(|e| format!("bad MpReachNLRIAttribute: {e}"))?;
            if let Some(first) = mp.next_hops.into_iter().next() {
                next_hop = Some(first);
            }
        }
    }
    let next_hop = match next_hop {
        None => None,
        Some(text) => {
            let ip: IpAddr = text
                .parse()
                .map_err(|_| format!("bad next hop {text:?} for {prefix}"))?;
            (!ip.is_unspecified()).then_some(ip)
        }
    };
    Ok(Path {
        prefix: prefix.trunc(),
        next_hop,
    })
}

#[cfg(test)]
mod tests {
    //! Against a real gobgpd on loopback (`--api-hosts 127.0.0.1:PORT`, `port = -1`: no BGP
    //! listener). Test neighbors use documentation addresses in passive mode, so gobgpd sends no
    //! packet to them; the one session test peers two gobgpds over 127.0.0.2 and 127.0.0.3.

    use super::*;
    use crate::intent::Intent;
    use std::io::Write;
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    const REQUIRE_ENV: &str = "BGPGEN_REQUIRE_DAEMONS";
    const GLOBAL: &str =
        "[global.config]\n  as = 65000\n  router-id = \"192.0.2.1\"\n  port = -1\n";

    /// `true` when gobgpd can run; otherwise fails under `BGPGEN_REQUIRE_DAEMONS=1` or prints
    /// SKIPPED.
    fn have_gobgpd(test: &str) -> bool {
        let found = Command::new("gobgpd")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            assert!(
                std::env::var_os(REQUIRE_ENV).is_none_or(|v| v != "1"),
                "{REQUIRE_ENV}=1 but gobgpd is not installed"
            );
            println!("SKIPPED: {test}: gobgpd is not installed");
        }
        found
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port")
    }

    /// A gobgpd child process; killed on drop, also when the test panics.
    struct Gobgpd {
        child: Option<Child>,
        dir: tempfile::TempDir,
        api_port: u16,
    }

    impl Gobgpd {
        fn start(config: &str) -> Gobgpd {
            let dir = tempfile::tempdir().expect("temp dir");
            std::fs::write(dir.path().join("gobgpd.toml"), config).expect("write config");
            let mut d = Gobgpd {
                child: None,
                dir,
                api_port: free_port(),
            };
            d.spawn();
            d
        }

        fn spawn(&mut self) {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.path().join("gobgpd.log"))
                .expect("log file");
            let child = Command::new("gobgpd")
                .arg("-f")
                .arg(self.dir.path().join("gobgpd.toml"))
                .arg(format!("--api-hosts=127.0.0.1:{}", self.api_port))
                .args(["--pprof-disable", "--log-plain", "--log-level=info"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .expect("spawn gobgpd");
            self.child = Some(child);
        }

        fn kill(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }

        fn addr(&self) -> String {
            format!("127.0.0.1:{}", self.api_port)
        }

        fn log(&self) -> String {
            std::fs::read_to_string(self.dir.path().join("gobgpd.log")).unwrap_or_default()
        }

        /// Connects once gobgpd answers GetBgp.
        async fn api(&self) -> GobgpApi {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(api) = GobgpApi::connect(self.addr()).await
                    && api.global().await.is_ok()
                {
                    return api;
                }
                assert!(
                    Instant::now() < deadline,
                    "gobgpd did not come up on {}; log:\n{}",
                    self.addr(),
                    self.log()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    impl Drop for Gobgpd {
        fn drop(&mut self) {
            self.kill();
        }
    }

    fn path(prefix: &str, next_hop: Option<&str>) -> Path {
        Path {
            prefix: prefix.parse().expect("prefix"),
            next_hop: next_hop.map(|n| n.parse().expect("next hop")),
        }
    }

    /// 600 IPv4 /32 and 400 IPv6 /128; every fifth has an explicit next hop, one an IPv6 next hop
    /// for an IPv4 prefix.
    fn thousand_paths() -> Vec<Path> {
        let mut out = Vec::new();
        for i in 0..600u32 {
            // One IPv4 prefix with an IPv6 next hop (RFC 8950, sent as MP_REACH_NLRI).
            let nh = match i {
                1 => Some("2001:db8::fe"),
                _ => (i % 5 == 0).then_some("192.0.2.254"),
            };
            out.push(path(
                &format!("10.{}.{}.{}/32", 16 + i / 65536, (i / 256) % 256, i % 256),
                nh,
            ));
        }
        for i in 0..400u32 {
            let nh = (i % 5 == 0).then_some("2001:db8::fe");
            out.push(path(&format!("2001:db8:1::{:x}/128", i + 1), nh));
        }
        out.sort();
        out
    }

    async fn local_paths(api: &GobgpApi) -> Vec<Path> {
        let mut all = api
            .list_local_paths(Family::Ipv4Unicast)
            .await
            .expect("list v4");
        all.extend(
            api.list_local_paths(Family::Ipv6Unicast)
                .await
                .expect("list v6"),
        );
        all.sort();
        all
    }

    #[tokio::test]
    async fn connect_errors_name_the_address() {
        // 127.0.0.254: tests start gobgpds on free ports of 127.0.0.1 concurrently, and one may
        // take this port between free_port() and the connect.
        let port = free_port();
        let err = GobgpApi::connect(format!("127.0.0.254:{port}"))
            .await
            .expect_err("nothing listens");
        assert!(err.is_unavailable(), "{err}");
        assert!(
            err.to_string().contains(&format!("127.0.0.254:{port}")),
            "{err}"
        );
        let lazy = GobgpApi::connect_lazy(format!("127.0.0.254:{port}")).expect("lazy");
        let err = lazy.global().await.expect_err("nothing listens");
        assert!(err.is_unavailable(), "{err}");
        assert!(err.to_string().contains("GetBgp"), "{err}");
        for bad in [
            "127.0.0.1",
            "http://127.0.0.1:50051",
            "unix://relative/path",
            "unix://",
            "::1:50051",
            ":50051",
            "a b:1",
        ] {
            let err = GobgpApi::connect_lazy(bad).expect_err(bad);
            assert!(matches!(err, GobgpApiError::Address { .. }), "{bad}: {err}");
        }
        assert!(GobgpApi::connect_lazy("[::1]:50051").is_ok());
        assert!(GobgpApi::connect_lazy("localhost:50051").is_ok());
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = format!("unix://{}/gobgpd.sock", dir.path().display());
        let err = GobgpApi::connect(&socket).await.expect_err("no socket");
        assert!(err.is_unavailable(), "{err}");
        assert!(err.to_string().contains(&socket), "{err}");
    }

    #[test]
    fn any_packing_uses_upstream_type_urls() {
        let p = path_to_api(&path("10.0.0.1/24", None), false);
        let nlri = p.nlri.as_ref().expect("nlri");
        assert_eq!(nlri.type_url, "type.googleapis.com/apipb.IPAddressPrefix");
        let urls: Vec<&str> = p.pattrs.iter().map(|a| a.type_url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "type.googleapis.com/apipb.OriginAttribute",
                "type.googleapis.com/apipb.NextHopAttribute"
            ]
        );
        // Host bits are cleared, the unspecified next hop reads back as None.
        assert_eq!(path_from_api(&p), Ok(path("10.0.0.0/24", None)));
        let p6 = path_to_api(&path("2001:db8::/64", Some("2001:db8::1")), false);
        assert_eq!(
            p6.pattrs[1].type_url,
            "type.googleapis.com/apipb.MpReachNLRIAttribute"
        );
        let mp = apipb::MpReachNlriAttribute::unpack(&p6.pattrs[1])
            .expect("mp reach")
            .expect("decodes");
        assert_eq!(mp.next_hops, ["2001:db8::1"]);
        assert_eq!(
            mp.family.and_then(family_from_api),
            Some(Family::Ipv6Unicast)
        );
        assert_eq!(
            path_from_api(&p6),
            Ok(path("2001:db8::/64", Some("2001:db8::1")))
        );
        let unspecified6 = path_to_api(&path("2001:db8::/64", None), false);
        let mp = apipb::MpReachNlriAttribute::unpack(&unspecified6.pattrs[1])
            .expect("mp reach")
            .expect("decodes");
        assert_eq!(mp.next_hops, ["::"]);
    }

    #[tokio::test]
    async fn global_reports_the_running_config() {
        if !have_gobgpd("global_reports_the_running_config") {
            return;
        }
        let d = Gobgpd::start(GLOBAL);
        let api = d.api().await;
        assert_eq!(
            api.global().await.expect("global"),
            (65000, Ipv4Addr::new(192, 0, 2, 1), -1)
        );
        assert_eq!(
            api.table_paths(Family::Ipv4Unicast).await.expect("table"),
            0
        );
        assert!(api.list_peers().await.expect("peers").is_empty());
    }

    /// gobgpd 3.10 serves its API on a Unix socket (`--api-hosts unix:///PATH`, what `run --spawn`
    /// uses), and this client reaches it there, also after gobgpd restarted on the same path.
    #[tokio::test]
    async fn api_over_a_unix_socket() {
        if !have_gobgpd("api_over_a_unix_socket") {
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("gobgpd.toml"), GLOBAL).expect("write config");
        let socket = dir.path().join("gobgpd.sock");
        let addr = format!("unix://{}", socket.display());
        let start = || {
            Command::new("gobgpd")
                .arg("-f")
                .arg(dir.path().join("gobgpd.toml"))
                .arg(format!("--api-hosts={addr}"))
                .args(["--pprof-disable", "--log-level=error"])
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn gobgpd")
        };
        let mut child = start();
        let api = GobgpApi::connect_lazy(&addr).expect("address");
        let deadline = Instant::now() + Duration::from_secs(20);
        while api.global().await.is_err() {
            assert!(Instant::now() < deadline, "gobgpd never answered on {addr}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(api.global().await.expect("global").0, 65000);
        api.add_paths(&[path("10.16.0.5/32", None)])
            .await
            .expect("add over the socket");
        assert_eq!(local_paths(&api).await, vec![path("10.16.0.5/32", None)]);
        let _ = child.kill();
        let _ = child.wait();
        // A killed gobgpd leaves its socket behind and the next one cannot bind it
        // ("address already in use"): whoever restarts gobgpd removes it first.
        assert!(socket.exists(), "gobgpd removed its socket when killed");
        std::fs::remove_file(&socket).expect("remove the stale socket");
        let mut child = start();
        let deadline = Instant::now() + Duration::from_secs(20);
        while api.global().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "the restarted gobgpd never answered on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            local_paths(&api).await.is_empty(),
            "a new gobgpd has no paths"
        );
        let _ = child.kill();
        let _ = child.wait();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sync_paths_sends_only_the_difference_and_survives_a_restart() {
        if !have_gobgpd("sync_paths_sends_only_the_difference_and_survives_a_restart") {
            return;
        }
        let mut d = Gobgpd::start(GLOBAL);
        let api = d.api().await;
        let wanted = thousand_paths();

        let t = Instant::now();
        let stats = api.sync_paths(&wanted).await.expect("sync");
        let first_sync = t.elapsed();
        assert_eq!(
            stats,
            SyncStats {
                added: 1000,
                deleted: 0,
                kept: 0
            }
        );
        let t = Instant::now();
        assert_eq!(local_paths(&api).await, wanted);
        let list_time = t.elapsed();
        assert_eq!(api.table_paths(Family::Ipv4Unicast).await.expect("v4"), 600);
        assert_eq!(api.table_paths(Family::Ipv6Unicast).await.expect("v6"), 400);

        let t = Instant::now();
        let stats = api.sync_paths(&wanted).await.expect("resync");
        let noop_sync = t.elapsed();
        assert_eq!(
            stats,
            SyncStats {
                added: 0,
                deleted: 0,
                kept: 1000
            }
        );

        // Change half: 250 prefixes replaced by others, 250 next hops changed, 500 untouched.
        let mut changed = Vec::new();
        for (i, p) in wanted.iter().enumerate() {
            match i % 4 {
                0 => {
                    let new = match p.prefix {
                        IpNet::V4(n) => format!(
                            "172.16.{}.{}/32",
                            n.addr().octets()[2],
                            n.addr().octets()[3]
                        ),
                        IpNet::V6(n) => format!("2001:db8:2::{:x}/128", n.addr().segments()[7]),
                    };
                    changed.push(path(&new, None));
                }
                1 => changed.push(Path {
                    prefix: p.prefix,
                    next_hop: match (p.next_hop, p.prefix) {
                        (Some(_), _) => None,
                        (None, IpNet::V4(_)) => Some("192.0.2.253".parse().expect("ip")),
                        (None, IpNet::V6(_)) => Some("2001:db8::fd".parse().expect("ip")),
                    },
                }),
                _ => changed.push(*p),
            }
        }
        changed.sort();
        let t = Instant::now();
        let stats = api.sync_paths(&changed).await.expect("sync half");
        let half_sync = t.elapsed();
        assert_eq!(
            stats,
            SyncStats {
                added: 500,
                deleted: 250,
                kept: 500
            }
        );
        assert_eq!(local_paths(&api).await, changed);
        assert_eq!(
            api.sync_paths(&changed).await.expect("noop"),
            SyncStats {
                added: 0,
                deleted: 0,
                kept: 1000
            }
        );

        // Delete everything.
        let stats = api.sync_paths(&[]).await.expect("delete all");
        assert_eq!(
            stats,
            SyncStats {
                added: 0,
                deleted: 1000,
                kept: 0
            }
        );
        assert!(local_paths(&api).await.is_empty());
        assert_eq!(api.table_paths(Family::Ipv4Unicast).await.expect("v4"), 0);
        assert_eq!(api.table_paths(Family::Ipv6Unicast).await.expect("v6"), 0);

        // add_paths / delete_paths directly, and the whole set through one AddPathStream.
        let t = Instant::now();
        api.add_paths(&wanted).await.expect("add 1000");
        let add_time = t.elapsed();
        assert_eq!(local_paths(&api).await, wanted);
        let t = Instant::now();
        api.delete_paths(&wanted[..500]).await.expect("delete 500");
        let delete_time = t.elapsed();
        assert_eq!(local_paths(&api).await, wanted[500..].to_vec());
        api.delete_all_local_paths(Some(Family::Ipv6Unicast))
            .await
            .expect("DeletePath v6");
        assert_eq!(api.table_paths(Family::Ipv6Unicast).await.expect("v6"), 0);
        assert_eq!(
            api.sync_paths(&wanted).await.expect("sync back"),
            SyncStats {
                added: 900,
                deleted: 0,
                kept: 100
            }
        );

        // A restarted gobgpd has lost every path: the table count shows it, a sync re-adds all.
        d.kill();
        let err = api
            .table_paths(Family::Ipv4Unicast)
            .await
            .expect_err("gobgpd is down");
        assert!(err.is_unavailable(), "{err}");
        d.spawn();
        let fresh = d.api().await;
        // The old client reconnects by itself.
        let deadline = Instant::now() + Duration::from_secs(10);
        let count = loop {
            match api.table_paths(Family::Ipv4Unicast).await {
                Ok(n) => break n,
                Err(e) if e.is_unavailable() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("after restart: {e}"),
            }
        };
        assert_eq!(count, 0);
        let t = Instant::now();
        let stats = api.sync_paths(&wanted).await.expect("sync after restart");
        let restart_sync = t.elapsed();
        assert_eq!(
            stats,
            SyncStats {
                added: 1000,
                deleted: 0,
                kept: 0
            }
        );
        assert_eq!(local_paths(&fresh).await, wanted);

        // A known previous state: only the change is sent, nothing is listed.
        let mut one_more = wanted.clone();
        one_more.push(path("10.99.0.0/24", None));
        assert_eq!(
            api.push_difference(&wanted, &one_more).await.expect("push"),
            SyncStats {
                added: 1,
                deleted: 0,
                kept: 1000
            }
        );
        assert_eq!(api.table_paths(Family::Ipv4Unicast).await.expect("v4"), 601);
        assert_eq!(
            api.push_difference(&one_more, &wanted)
                .await
                .expect("push back"),
            SyncStats {
                added: 0,
                deleted: 1,
                kept: 1000
            }
        );
        assert_eq!(local_paths(&fresh).await, wanted);

        // Contradictory input is refused before anything is sent.
        let err = api
            .sync_paths(&[
                path("10.9.0.0/24", None),
                path("10.9.0.1/24", Some("192.0.2.9")),
            ])
            .await
            .expect_err("two next hops");
        assert!(matches!(err, GobgpApiError::Invalid { .. }), "{err}");

        println!(
            "1,000 paths: first sync {first_sync:?}, list {list_time:?}, no-op sync {noop_sync:?}, \
             half changed {half_sync:?}, add_paths {add_time:?}, delete_paths(500) {delete_time:?}, \
             sync after restart {restart_sync:?}"
        );
    }

    /// A benchmark, not a timed test: `cargo test --lib gobgp_api -- --ignored --nocapture`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "benchmark"]
    async fn hundred_thousand_paths() {
        if !have_gobgpd("hundred_thousand_paths") {
            return;
        }
        let d = Gobgpd::start(GLOBAL);
        let api = d.api().await;
        let wanted: Vec<Path> = (0..100_000u32)
            .map(|i| {
                path(
                    &format!("10.{}.{}.{}/32", 16 + i / 65536, (i / 256) % 256, i % 256),
                    None,
                )
            })
            .collect();
        let t = Instant::now();
        let stats = api.sync_paths(&wanted).await.expect("sync");
        let first = t.elapsed();
        assert_eq!(stats.added, 100_000);
        let t = Instant::now();
        assert_eq!(
            api.list_local_paths(Family::Ipv4Unicast)
                .await
                .expect("list")
                .len(),
            100_000
        );
        let list = t.elapsed();
        let t = Instant::now();
        assert_eq!(api.sync_paths(&wanted).await.expect("noop").kept, 100_000);
        let noop = t.elapsed();
        let mut changed = wanted.clone();
        changed.push(path("10.200.0.0/24", None));
        let t = Instant::now();
        assert_eq!(
            api.push_difference(&wanted, &changed)
                .await
                .expect("push")
                .added,
            1
        );
        let one = t.elapsed();
        let t = Instant::now();
        assert_eq!(
            api.table_paths(Family::Ipv4Unicast).await.expect("table"),
            100_001
        );
        let table = t.elapsed();
        println!(
            "100,000 paths: first sync {first:?}, list {list:?}, no-op sync {noop:?}, \
             push_difference(+1) {one:?}, table_paths {table:?}"
        );
    }

    #[tokio::test]
    async fn prefix_paths_looks_up_one_exact_prefix() {
        if !have_gobgpd("prefix_paths_looks_up_one_exact_prefix") {
            return;
        }
        let d = Gobgpd::start(GLOBAL);
        let api = d.api().await;
        let one = |p: &str| p.parse::<IpNet>().expect("prefix");
        assert_eq!(
            api.prefix_paths(one("10.16.0.5/32")).await.expect("empty"),
            0
        );
        api.add_paths(&[
            path("10.16.0.5/32", None),
            path("10.16.0.0/16", None),
            path("fd00:10:16::5/128", None),
        ])
        .await
        .expect("add");
        for (prefix, count) in [
            ("10.16.0.5/32", 1),
            ("10.16.0.0/16", 1),
            ("10.16.0.6/32", 0),
            ("10.16.0.0/24", 0),
            ("fd00:10:16::5/128", 1),
        ] {
            assert_eq!(
                api.prefix_paths(one(prefix)).await.expect("lookup"),
                count,
                "{prefix}"
            );
        }
        api.delete_paths(&[path("10.16.0.5/32", None)])
            .await
            .expect("delete");
        assert_eq!(
            api.prefix_paths(one("10.16.0.5/32")).await.expect("gone"),
            0
        );
    }

    fn spec(address: &str, peer_as: u32) -> PeerSpec {
        let address: IpAddr = address.parse().expect("address");
        PeerSpec {
            address,
            peer_as,
            families: vec![Family::of(address)],
            hold_time: 90,
            keepalive: 30,
            password: None,
            passive: true,
            ebgp_multihop_ttl: None,
            graceful_restart: None,
            local_address: None,
        }
    }

    #[tokio::test]
    async fn ensure_peers_fixes_only_the_differences() {
        if !have_gobgpd("ensure_peers_fixes_only_the_differences") {
            return;
        }
        // 192.0.2.20 comes from the file, written as templates/gobgpd.toml.j2 renders it.
        let config = format!(
            "{GLOBAL}
[[neighbors]]
  [neighbors.config]
    neighbor-address = \"192.0.2.20\"
    peer-as = 65020
    auth-password = \"s3cret\"
  [neighbors.timers.config]
    hold-time = 90
    keepalive-interval = 30
  [neighbors.transport.config]
    passive-mode = true
  [neighbors.ebgp-multihop.config]
    enabled = true
    multihop-ttl = 3
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 120
    deferral-time = 300
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = \"ipv4-unicast\"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
"
        );
        let d = Gobgpd::start(&config);
        let api = d.api().await;
        let from_file = PeerSpec {
            password: Some("s3cret".into()),
            ebgp_multihop_ttl: Some(3),
            graceful_restart: Some((120, 300)),
            ..spec("192.0.2.20", 65020)
        };
        let v4 = PeerSpec {
            password: Some("other".into()),
            graceful_restart: Some((90, 360)),
            ebgp_multihop_ttl: Some(2),
            ..spec("192.0.2.10", 65001)
        };
        let v6 = spec("2001:db8::10", 65000);
        let mut wanted = vec![from_file.clone(), v4.clone(), v6.clone()];

        let fix = api.ensure_peers(&wanted).await.expect("ensure");
        assert_eq!(
            (fix.added, fix.updated, fix.deleted),
            (2, 0, 0),
            "{:?}",
            fix.changes
        );
        let peers = api.list_peers().await.expect("list");
        let summary: Vec<(IpAddr, u32, Vec<Family>)> = peers
            .iter()
            .map(|p| (p.address, p.peer_as, p.families.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                (v4.address, 65001, vec![Family::Ipv4Unicast]),
                (from_file.address, 65020, vec![Family::Ipv4Unicast]),
                (v6.address, 65000, vec![Family::Ipv6Unicast]),
            ]
        );
        for p in &peers {
            assert_ne!(p.session_state, SessionState::Established);
            assert_eq!(p.uptime, None);
        }
        let fix = api.ensure_peers(&wanted).await.expect("again");
        assert!(fix.is_noop(), "{:?}", fix.changes);

        // A changed hold time: one neighbor updated in place (timers only).
        for s in &mut wanted[..2] {
            s.hold_time = 60;
            s.keepalive = 20;
        }
        let fix = api.ensure_peers(&wanted).await.expect("hold time");
        assert_eq!(
            (fix.added, fix.updated, fix.deleted),
            (0, 2, 0),
            "{:?}",
            fix.changes
        );
        assert!(
            fix.changes.iter().all(|c| c.ends_with("(timers)")),
            "{:?}",
            fix.changes
        );
        let log = d.log();
        assert_eq!(
            log.matches("Update timer configuration").count(),
            2,
            "{log}"
        );
        assert!(
            !log.contains("Delete a peer configuration"),
            "re-created instead of updated:\n{log}"
        );
        assert!(api.ensure_peers(&wanted).await.expect("again").is_noop());

        // Multihop, which UpdatePeer ignores, and families/GR: the neighbor is re-created.
        wanted[1].ebgp_multihop_ttl = Some(5);
        wanted[2].graceful_restart = Some((30, 60));
        let fix = api.ensure_peers(&wanted).await.expect("multihop");
        assert_eq!(
            (fix.added, fix.updated, fix.deleted),
            (0, 2, 0),
            "{:?}",
            fix.changes
        );
        assert!(api.ensure_peers(&wanted).await.expect("again").is_noop());

        // A removed neighbor is deleted, the others untouched.
        wanted.pop();
        let fix = api.ensure_peers(&wanted).await.expect("remove");
        assert_eq!(
            (fix.added, fix.updated, fix.deleted),
            (0, 0, 1),
            "{:?}",
            fix.changes
        );
        let addresses: Vec<IpAddr> = api
            .list_peers()
            .await
            .expect("list")
            .iter()
            .map(|p| p.address)
            .collect();
        assert_eq!(addresses, [v4.address, from_file.address]);
        assert!(api.ensure_peers(&wanted).await.expect("again").is_noop());
        // Nothing is sent to these passive documentation-address neighbors, and nothing fails.
        assert!(!d.log().contains("level=error"), "{}", d.log());

        // Duplicate neighbors are refused.
        let err = api
            .ensure_peers(&[v6.clone(), v6])
            .await
            .expect_err("duplicate");
        assert!(matches!(err, GobgpApiError::Invalid { .. }), "{err}");
    }

    #[test]
    fn peer_specs_follow_the_template_rules() {
        let yaml = r#"
apiVersion: bgpgen/v1
kind: Intent
speaker: {mode: node, node: n1, gateway: null, routerId: 192.0.2.1, localAs: 65000}
bgp:
  holdTime: 90
  keepalive: 30
  passive: false
  ebgpMultihopTtl: 4
  extendedNexthop: false
  gracefulRestart: {enabled: true, restartTime: 120, deferralTime: 300}
  bfd: {enabled: false, minTxMs: 1000, minRxMs: 1000, multiplier: 3}
  password: pw
neighbors:
  - {address: 192.0.2.10, remoteAs: 65001, families: [ipv4-unicast]}
  - {address: "2001:db8::10", remoteAs: 65000, families: [ipv6-unicast]}
routes: []
diagnostics: []
hash: ""
"#;
        let intent: Intent = crate::source::yaml::from_str(yaml).expect("intent");
        let specs = PeerSpec::from_intent(&intent);
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].ebgp_multihop_ttl, Some(4), "eBGP gets multihop");
        assert_eq!(specs[1].ebgp_multihop_ttl, None, "iBGP does not");
        assert_eq!(specs[0].graceful_restart, Some((120, 300)));
        assert_eq!(specs[0].password.as_deref(), Some("pw"));
        assert_eq!(specs[1].families, [Family::Ipv6Unicast]);
        assert!(!format!("{:?}", specs[0]).contains("pw"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn learned_paths_are_not_local() {
        if !have_gobgpd("learned_paths_are_not_local") {
            return;
        }
        // B listens on 127.0.0.3:PORT; A connects from 127.0.0.2 (iBGP, next hops unchanged).
        let bgp_port = free_port();
        let a = Gobgpd::start(&format!(
            "{GLOBAL}
[[neighbors]]
  [neighbors.config]
    neighbor-address = \"127.0.0.3\"
    peer-as = 65000
  [neighbors.transport.config]
    local-address = \"127.0.0.2\"
    remote-port = {bgp_port}
"
        ));
        let b = Gobgpd::start(&format!(
            "[global.config]
  as = 65000
  router-id = \"192.0.2.2\"
  port = {bgp_port}
  local-address-list = [\"127.0.0.3\"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = \"127.0.0.2\"
    peer-as = 65000
  [neighbors.transport.config]
    passive-mode = true
"
        ));
        let (api_a, api_b) = (a.api().await, b.api().await);
        api_b
            .add_paths(&[path("198.51.100.0/24", Some("192.0.2.77"))])
            .await
            .expect("B announces");
        let own = path("203.0.113.0/24", Some("192.0.2.66"));
        api_a.add_paths(&[own]).await.expect("A announces");
        let deadline = Instant::now() + Duration::from_secs(60);
        while api_a.table_paths(Family::Ipv4Unicast).await.expect("table") < 2 {
            assert!(
                Instant::now() < deadline,
                "no session; A:\n{}\nB:\n{}",
                a.log(),
                b.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The raw evidence: neighbor_ip is "<nil>" for our path, the peer's address otherwise.
        let mut client = api_a.client.clone();
        let mut stream = client
            .list_path(apipb::ListPathRequest {
                family: Some(family_to_api(Family::Ipv4Unicast)),
                ..Default::default()
            })
            .await
            .expect("ListPath")
            .into_inner();
        let mut seen = BTreeMap::new();
        while let Some(rsp) = stream.message().await.expect("stream") {
            let dst = rsp.destination.expect("destination");
            for p in dst.paths {
                seen.insert(
                    dst.prefix.clone(),
                    (p.neighbor_ip, p.source_asn, p.source_id),
                );
            }
        }
        println!("ListPath neighbor_ip/source_asn/source_id: {seen:?}");
        assert_eq!(seen["203.0.113.0/24"].0, "<nil>");
        assert_eq!(seen["198.51.100.0/24"].0, "127.0.0.3");

        assert_eq!(
            api_a
                .list_local_paths(Family::Ipv4Unicast)
                .await
                .expect("list"),
            [own]
        );
        let peers = api_a.list_peers().await.expect("peers");
        assert_eq!(peers[0].session_state, SessionState::Established);
        assert!(peers[0].uptime.is_some());
        assert_eq!(peers[0].received, 1);
        // Syncing to nothing withdraws our path only; the learned one stays.
        let stats = api_a.sync_paths(&[]).await.expect("sync");
        assert_eq!(
            stats,
            SyncStats {
                added: 0,
                deleted: 1,
                kept: 0
            }
        );
        assert_eq!(
            api_a.table_paths(Family::Ipv4Unicast).await.expect("table"),
            1
        );
        std::io::stdout().flush().ok();
    }
}
