//! Read-back from gobgpd over its gRPC API: `ListPeer` (state, uptime, flops, message counters,
//! out queue) and the adj-RIB-out of each established neighbor (`GetTable` for the count every
//! check, `ListPath` of table ADJ_OUT for the prefixes when read in full).

use std::collections::BTreeMap;

use crate::daemon::gobgp::api::GobgpApi;
use crate::daemon::observe::{Depth, Observation, ObserveError, SessionState};

fn failed(e: impl std::fmt::Display) -> ObserveError {
    ObserveError {
        daemon: "gobgpd",
        message: e.to_string(),
    }
}

pub async fn observe(api: &GobgpApi, depth: Depth) -> Result<Observation, ObserveError> {
    let mut peers = api.observe_peers().await.map_err(failed)?;
    for peer in &mut peers {
        if peer.state != SessionState::Established {
            continue;
        }
        let mut full = BTreeMap::new();
        for family in peer.families.clone() {
            match depth {
                Depth::Counts => {
                    let count = api
                        .adj_out_count(peer.address, family)
                        .await
                        .map_err(failed)?;
                    peer.advertised_count.insert(family, count);
                }
                Depth::Full => {
                    let prefixes = api.adj_out(peer.address, family).await.map_err(failed)?;
                    peer.advertised_count.insert(family, prefixes.len() as u64);
                    full.insert(family, prefixes);
                }
            }
        }
        if depth == Depth::Full {
            peer.advertised = Some(full);
        }
    }
    Ok(Observation {
        at: std::time::SystemTime::now(),
        peers,
    })
}
