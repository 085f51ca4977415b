//! The kernel's route to each neighbor, for `--allowed-source-addresses`: I/O at the edge, used
//! by `apply` and `run` before compiling (`compile` and `render` take the result as options, or
//! `--neighbor-local-address`). kube-ovn-speaker asks the same question with vishvananda/netlink's
//! `RouteGet` (an `RTM_GETROUTE` request, what `ip route get ADDRESS` sends) and reads each
//! route's preferred source (`RTA_PREFSRC`).
//!
//! netlink-packet-route (rust-netlink, the crates behind `rtnetlink`) builds and parses the
//! messages, and netlink-sys sends them: one blocking request and its answer, no async runtime,
//! no `ip -j route get` output to parse (whose format and presence differ between images).

use std::net::IpAddr;
use std::time::Duration;

use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::options::{OptionsError, SpeakerOptions};

/// How long the kernel may take to answer (it answers at once; this bounds a broken netlink).
const TIMEOUT: Duration = Duration::from_secs(2);

/// The preferred source address of each route the kernel would use to reach `destination`
/// (`None` for a route without one), in the kernel's order.
pub fn route_sources(destination: IpAddr) -> Result<Vec<Option<IpAddr>>, String> {
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| format!("netlink socket: {e}"))?;
    socket
        .bind_auto()
        .map_err(|e| format!("netlink bind: {e}"))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(|e| format!("netlink connect: {e}"))?;
    set_receive_timeout(&socket)?;

    let mut message = RouteMessage::default();
    let (family, bits) = match destination {
        IpAddr::V4(_) => (AddressFamily::Inet, 32),
        IpAddr::V6(_) => (AddressFamily::Inet6, 128),
    };
    message.header.address_family = family;
    message.header.destination_prefix_length = bits;
    message
        .attributes
        .push(RouteAttribute::Destination(RouteAddress::from(destination)));
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    header.sequence_number = 1;
    let mut packet = NetlinkMessage::new(
        header,
        NetlinkPayload::from(RouteNetlinkMessage::GetRoute(message)),
    );
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket
        .send(&buf, 0)
        .map_err(|e| format!("netlink send: {e}"))?;

    let mut sources = Vec::new();
    let mut receive = vec![0u8; 8192];
    loop {
        let size = socket
            .recv(&mut &mut receive[..], 0)
            .map_err(|e| format!("netlink receive: {e}"))?;
        let mut offset = 0;
        while offset < size {
            let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&receive[offset..size])
                .map_err(|e| format!("netlink reply: {e}"))?;
            let length = reply.header.length as usize;
            match reply.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)) => {
                    sources.push(route.attributes.iter().find_map(|a| match a {
                        RouteAttribute::PrefSource(RouteAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
                        RouteAttribute::PrefSource(RouteAddress::Inet6(v6)) => {
                            Some(IpAddr::V6(*v6))
                        }
                        _ => None,
                    }));
                }
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(e.to_io().to_string());
                }
                NetlinkPayload::Done(_) => return Ok(sources),
                _ => {}
            }
            if length == 0 {
                break;
            }
            offset += length;
        }
        // A request without NLM_F_DUMP is answered with one message.
        if !sources.is_empty() {
            return Ok(sources);
        }
    }
}

fn set_receive_timeout(socket: &Socket) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let tv = libc::timeval {
        tv_sec: TIMEOUT.as_secs() as libc::time_t,
        tv_usec: 0,
    };
    // SAFETY: setsockopt on a socket this function owns, with a pointer to a live timeval of the
    // size passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "netlink receive timeout: {}",
            std::io::Error::last_os_error()
        ))
    }
}

/// Pins the local address of every neighbor that `--allowed-source-addresses` (or its IPv6
/// twin) covers and no `--neighbor-local-address` gives, from the kernel's routes. The first
/// neighbor no allowed address fits is an error naming it.
pub fn pin_local_addresses(options: &mut SpeakerOptions) -> Result<(), OptionsError> {
    pin_with(options, &route_sources)
}

/// [`pin_local_addresses`] with the lookup injected (tests).
pub fn pin_with(
    options: &mut SpeakerOptions,
    lookup: &dyn Fn(IpAddr) -> Result<Vec<Option<IpAddr>>, String>,
) -> Result<(), OptionsError> {
    for neighbor in options.route_lookups_needed() {
        let local = options.pin_from_routes(neighbor, lookup(neighbor))?;
        tracing::info!(%neighbor, %local, "route lookup selected the BGP local address");
    }
    Ok(())
}
