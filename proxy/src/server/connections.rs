//! Open client connections per client network, bounded (`[server] max_connections_per_client`).
//! TVs keep connections open for a long time, and an idle connection holds tens of kilobytes:
//! without a bound one client could hold memory without limit.
//!
//! On TLS listeners (where TVs connect) a connection takes its slot at accept, before the
//! handshake, and the slot lives in the TCP stream itself (as its `Tracer`, which Pingora
//! drops with the stream): HTTP/1 and HTTP/2 alike, requests or none, a connection is counted
//! until it closes. Pingora offers no such hook on plain listeners: there a connection takes
//! its slot with its first request (carried across keep-alive requests in Pingora's
//! per-connection context) — so a plain-HTTP client that never finishes a request header is
//! not counted (see the README). On both, a network whose slots are all taken is refused at
//! accept. The proxies in `[client_ip] trusted_proxies` are not limited (a load balancer
//! carries many clients); the networks are those of the conf the process started with.

use auth_core::client_network::ClientNetworks;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

pub struct ClientConnections {
    /// 0: no limit.
    limit: u32,
    networks: ClientNetworks,
    trusted: Vec<IpNet>,
    /// Taken slots by network. A lock per connection opened and closed, never per request.
    open: Mutex<HashMap<IpNet, u32>>,
    /// Connections refused (at accept or at their first request), a metric.
    pub refused: AtomicU64,
}

/// A connection's place in its network's count, returned when dropped.
pub struct Slot {
    owner: Arc<ClientConnections>,
    net: IpNet,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.owner.open.lock() {
            if let Some(n) = open.get_mut(&self.net) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(&self.net);
                }
            }
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

impl ClientConnections {
    pub fn new(limit: u32, networks: ClientNetworks, trusted: Vec<IpNet>) -> Arc<Self> {
        Arc::new(ClientConnections {
            limit,
            networks,
            trusted,
            open: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        })
    }

    fn counted(&self, peer: IpAddr) -> Option<IpNet> {
        let exempt = self.limit == 0 || self.trusted.iter().any(|n| n.contains(&peer));
        (!exempt).then(|| self.networks.of(peer))
    }

    /// A slot for a new connection from `peer`; `Ok(None)` when `peer` is not limited.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Option<Arc<Slot>>, Full> {
        let Some(net) = self.counted(peer) else {
            return Ok(None);
        };
        let mut open = self.open.lock().map_err(|_| Full)?;
        let n = open.entry(net).or_insert(0);
        if *n >= self.limit {
            drop(open);
            self.refused.fetch_add(1, Relaxed);
            return Err(Full);
        }
        *n += 1;
        Ok(Some(Arc::new(Slot {
            owner: self.clone(),
            net,
        })))
    }

    /// Whether `peer`'s network has no slot left (checked at accept).
    pub fn is_full(&self, peer: IpAddr) -> bool {
        let Some(net) = self.counted(peer) else {
            return false;
        };
        let full = self
            .open
            .lock()
            .is_ok_and(|open| open.get(&net).is_some_and(|n| *n >= self.limit));
        if full {
            self.refused.fetch_add(1, Relaxed);
        }
        full
    }

    /// Connections counted now (all networks), a metric.
    pub fn open(&self) -> u64 {
        self.open
            .lock()
            .map_or(0, |open| open.values().map(|n| u64::from(*n)).sum())
    }
}

/// `[server] keepalive_timeout` as Pingora takes it: whole seconds, a fraction rounded up (so
/// "500ms" is 1 s, not "no keep-alive"); None for zero, which closes after each response.
pub fn keepalive_secs(timeout: std::time::Duration) -> Option<u64> {
    let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
    (secs > 0).then_some(secs)
}

/// Holds a connection's slot inside its TCP stream: dropped, with the slot, when the stream is.
#[derive(Debug)]
struct SlotHolder(Arc<Slot>);

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slot({})", self.net)
    }
}

impl pingora::upstreams::peer::Tracing for SlotHolder {
    fn on_connected(&self) {}
    fn on_disconnected(&self) {}
    fn boxed_clone(&self) -> Box<dyn pingora::upstreams::peer::Tracing> {
        Box::new(SlotHolder(self.0.clone()))
    }
}

/// Takes the slot of a TLS connection at accept (Pingora calls this before the handshake);
/// a network without a free slot has its connection dropped.
pub struct AcceptSlot(pub Arc<ClientConnections>);

#[async_trait::async_trait]
impl pingora::listeners::PreTlsProcess for AcceptSlot {
    async fn process(
        &self,
        stream: &mut pingora::protocols::l4::stream::Stream,
    ) -> pingora::Result<()> {
        use pingora::protocols::GetSocketDigest;
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        let Some(peer) = peer else { return Ok(()) };
        let peer = auth_core::client_network::canonical_ip(peer);
        match self.0.admit(peer) {
            Ok(Some(slot)) => {
                stream.tracer = Some(pingora::upstreams::peer::Tracer(Box::new(SlotHolder(slot))));
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(Full) => pingora::Error::e_explain(
                pingora::ErrorType::ConnectRefused,
                "client network holds max_connections_per_client connections",
            ),
        }
    }
}

/// Pingora's accept-time filter over the same counts.
#[derive(Debug)]
pub struct AcceptFilter(pub Arc<ClientConnections>);

impl std::fmt::Debug for ClientConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConnections")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl pingora::listeners::ConnectionFilter for AcceptFilter {
    async fn should_accept(&self, addr: Option<&std::net::SocketAddr>) -> bool {
        // not an IP peer (a Unix socket): nothing to count by
        let Some(addr) = addr else { return true };
        // IPv4-mapped IPv6 peers count as their IPv4 address, as everywhere else
        let ip = auth_core::client_network::canonical_ip(addr.ip());
        !self.0.is_full(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_network_gets_its_limit_and_slots_come_back_when_dropped() {
        let c = ClientConnections::new(
            2,
            ClientNetworks::default(),
            vec!["10.0.0.0/8".parse().unwrap()],
        );
        let a = c.admit(ip("192.0.2.1")).unwrap();
        let b = c.admit(ip("192.0.2.1")).unwrap();
        assert!(a.is_some() && b.is_some());
        assert_eq!(c.admit(ip("192.0.2.1")).err(), Some(Full));
        assert!(c.is_full(ip("192.0.2.1")));
        // another network, and IPv6 addresses of one /64, count apart / together
        assert!(c.admit(ip("192.0.2.2")).unwrap().is_some());
        let v6 = c.admit(ip("2001:db8::1")).unwrap();
        let v6b = c.admit(ip("2001:db8::2")).unwrap();
        assert_eq!(c.admit(ip("2001:db8::3")).err(), Some(Full));
        // trusted proxies are not limited
        for _ in 0..5 {
            assert_eq!(c.admit(ip("10.1.2.3")).unwrap().map(|_| ()), None);
        }
        drop(a);
        assert!(!c.is_full(ip("192.0.2.1")));
        assert!(c.admit(ip("192.0.2.1")).unwrap().is_some());
        drop((b, v6, v6b));
        assert_eq!(c.refused.load(Relaxed), 3);
    }

    #[test]
    fn keepalive_rounds_up_to_whole_seconds_and_zero_turns_it_off() {
        use std::time::Duration;
        assert_eq!(keepalive_secs(Duration::from_millis(500)), Some(1));
        assert_eq!(keepalive_secs(Duration::from_millis(1900)), Some(2));
        assert_eq!(keepalive_secs(Duration::from_secs(75)), Some(75));
        assert_eq!(keepalive_secs(Duration::ZERO), None);
    }

    #[test]
    fn zero_means_no_limit() {
        let c = ClientConnections::new(0, ClientNetworks::default(), vec![]);
        for _ in 0..10 {
            assert!(c.admit(ip("192.0.2.1")).unwrap().is_none());
        }
        assert_eq!(c.open(), 0);
    }
}
