//! The background side of `SharedRedis`: makes the connection, then looks at the topology
//! twice a second (or at once when a caller saw an error) to report it and, for Sentinel, to
//! follow the master. Each change of master and each loss or return of reachability is
//! logged once.

use super::connect;
use super::settings::Mode;
use super::{RedisConn, SharedRedis};
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(500);
/// Sentinel: each look opens a connection to the master to check its ROLE, so look less often
/// while all is well; a caller's error still wakes the watcher at once.
const SENTINEL_TICK: Duration = Duration::from_secs(2);
/// Between two looks even when callers keep reporting errors.
const MIN_SPACING: Duration = Duration::from_millis(100);
/// One look at the topology may take this long.
const LOOK: Duration = Duration::from_secs(1);
/// While failing, a standalone or Sentinel connection is made afresh this often.
const REBUILD: Duration = Duration::from_secs(3);

pub(super) async fn run(shared: &SharedRedis) {
    connect::install_crypto();
    match shared.settings.mode.clone() {
        Mode::Standalone => standalone(shared).await,
        Mode::Cluster => cluster(shared).await,
        Mode::Sentinel { master_name } => sentinel(shared, &master_name).await,
    }
}

/// Waits for the next tick or a caller's report, whichever comes first.
async fn pause(shared: &SharedRedis, tick: Duration) {
    tokio::select! {
        () = tokio::time::sleep(tick) => {}
        () = shared.wake.notified() => {}
    }
    tokio::time::sleep(MIN_SPACING).await;
}

fn log_reachability(shared: &SharedRedis, changed: bool, reachable: bool) {
    if !changed {
        return;
    }
    let target = shared.settings.describe();
    if reachable {
        tracing::info!(redis = %target, "redis reachable");
    } else {
        tracing::warn!(redis = %target, "redis topology: a master is not reachable");
    }
}

fn log_failure(shared: &SharedRedis, error: String) {
    if shared.status.failed(error.clone()) {
        tracing::warn!(redis = %shared.settings.describe(), %error, "redis unreachable");
    }
}

async fn standalone(shared: &SharedRedis) {
    let Some(url) = shared.settings.urls.first() else {
        return;
    };
    let conn = match connect::single(url, &shared.settings) {
        Ok(c) => c,
        Err(e) => {
            shared.status.failed(e.to_string());
            tracing::error!(error = %e, "invalid redis settings; features using Redis run in fallback");
            return;
        }
    };
    shared.install(RedisConn::Single(conn.clone()));
    tracing::info!(redis = %shared.settings.describe(), "redis connection manager ready");
    let address = host_port(url);
    let mut conn = RedisConn::Single(conn);
    let mut rebuilt = Instant::now();
    loop {
        // a data command, not PING: a sentinel (a wrong port) answers PING too
        let mut probe = redis::cmd("EXISTS");
        probe.arg("edge:probe");
        match tokio::time::timeout(LOOK, probe.query_async::<i64>(&mut conn)).await {
            Ok(Ok(_)) => {
                let changed = shared.status.seen(1, vec![address.clone()], true);
                log_reachability(shared, changed, true);
            }
            Ok(Err(e)) => log_failure(shared, e.to_string()),
            Err(_) => log_failure(shared, format!("no answer within {LOOK:?}")),
        }
        // the manager reconnects after I/O errors by itself, but keeps a refused handshake
        // (a wrong password, an ACL user switched off): a fresh one every few seconds while
        // failing, so fixing Redis's side is enough
        if !shared.status.view().reachable && rebuilt.elapsed() >= REBUILD {
            if let Ok(fresh) = connect::single(url, &shared.settings) {
                conn = RedisConn::Single(fresh);
                shared.install(conn.clone());
            }
            rebuilt = Instant::now();
        }
        pause(shared, TICK).await;
    }
}

async fn cluster(shared: &SharedRedis) {
    // the cluster client connects eagerly (it reads the slot map first): retry until it can
    let mut backoff = Duration::from_millis(250);
    let mut conn = loop {
        match tokio::time::timeout(LOOK * 5, connect::cluster(&shared.settings)).await {
            Ok(Ok(c)) => break RedisConn::Cluster(c),
            Ok(Err(e)) => log_failure(shared, e.to_string()),
            Err(_) => log_failure(shared, "no answer from the seed nodes".into()),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    };
    shared.install(conn.clone());
    tracing::info!(redis = %shared.settings.describe(), "redis cluster connected");
    let mut replicas: Vec<String> = Vec::new();
    loop {
        let mut nodes = redis::cmd("CLUSTER");
        nodes.arg("NODES");
        match tokio::time::timeout(LOOK, nodes.query_async::<String>(&mut conn)).await {
            Ok(Ok(text)) => {
                let view = parse_cluster_nodes(&text);
                let before = shared.status.masters();
                // a failover is a node that was a replica and now serves slots; a master
                // merely failing is a loss of reachability, logged below
                let promoted = view.masters.iter().any(|m| replicas.contains(m));
                replicas.clone_from(&view.replicas);
                if promoted {
                    shared.status.failover();
                    shared.changed();
                    tracing::warn!(
                        from = %before.join(","),
                        to = %view.masters.join(","),
                        "redis cluster: masters changed (failover)"
                    );
                }
                let changed = shared
                    .status
                    .seen(view.nodes, view.masters, view.all_slots_served);
                log_reachability(shared, changed, view.all_slots_served);
            }
            Ok(Err(e)) => log_failure(shared, e.to_string()),
            Err(_) => log_failure(shared, format!("no answer within {LOOK:?}")),
        }
        pause(shared, TICK).await;
    }
}

async fn sentinel(shared: &SharedRedis, master_name: &str) {
    let mut client = match connect::sentinel(&shared.settings, master_name) {
        Ok(c) => c,
        Err(e) => {
            shared.status.failed(e.to_string());
            tracing::error!(error = %e, "invalid redis sentinel settings; features using Redis run in fallback");
            return;
        }
    };
    let mut current: Option<String> = None;
    loop {
        // asks the sentinels for the master, then checks that it says it is one (ROLE)
        match tokio::time::timeout(LOOK, client.async_get_client()).await {
            Ok(Ok(master)) => {
                let address = master.get_connection_info().addr().to_string();
                // a new master, or the same one after failures (a refused handshake is not
                // retried by the manager): a fresh connection
                let stale = !shared.status.view().reachable;
                if current.as_deref() != Some(address.as_str()) || stale {
                    match connect::manager(master, &shared.settings) {
                        Ok(conn) => {
                            shared.install(RedisConn::Single(conn));
                            match &current {
                                Some(old) if *old == address => {}
                                Some(old) => {
                                    shared.status.failover();
                                    tracing::warn!(from = %old, to = %address, master = master_name, "redis sentinel: master changed (failover)");
                                }
                                None => {
                                    tracing::info!(master = %address, name = master_name, "redis sentinel: master found")
                                }
                            }
                            current = Some(address.clone());
                        }
                        Err(e) => log_failure(shared, e.to_string()),
                    }
                }
                let changed = shared.status.seen(1, vec![address], true);
                log_reachability(shared, changed, true);
            }
            Ok(Err(e)) => log_failure(shared, e.to_string()),
            Err(_) => log_failure(shared, format!("no answer within {LOOK:?}")),
        }
        // quick looks while the master is missing: the promotion is found within a tick
        let tick = if shared.status.view().reachable {
            SENTINEL_TICK
        } else {
            TICK
        };
        pause(shared, tick).await;
    }
}

fn host_port(url: &str) -> String {
    use redis::IntoConnectionInfo;
    url.into_connection_info()
        .map(|i| i.addr().to_string())
        .unwrap_or_default()
}

pub(super) struct ClusterView {
    pub nodes: u64,
    /// Addresses of the masters that serve slots, sorted.
    pub masters: Vec<String>,
    /// Addresses of the replicas.
    pub replicas: Vec<String>,
    /// Every one of the 16,384 slots has a master that is not failed.
    pub all_slots_served: bool,
}

/// Reads `CLUSTER NODES`: `<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong>
/// <epoch> <link> <slot> …`.
pub(super) fn parse_cluster_nodes(text: &str) -> ClusterView {
    const SLOTS: usize = 16_384;
    let mut nodes = 0;
    let mut masters = Vec::new();
    let mut replicas = Vec::new();
    // a bit per slot: overlapping or absurd ranges from a confused node count once, clamped
    let mut served = vec![0u64; SLOTS / 64];
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        nodes += 1;
        let flags: Vec<&str> = f[2].split(',').collect();
        let address = f[1].split('@').next().unwrap_or_default().to_string();
        if flags.contains(&"slave") {
            replicas.push(address);
            continue;
        }
        // "fail?" is one node's suspicion, "fail" the cluster's agreement
        if !flags.contains(&"master") || flags.contains(&"fail") || f.len() < 9 {
            continue;
        }
        masters.push(address);
        for range in &f[8..] {
            if range.starts_with('[') {
                continue; // a slot being migrated
            }
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                for slot in a.min(SLOTS)..=b.min(SLOTS - 1) {
                    served[slot / 64] |= 1 << (slot % 64);
                }
            }
        }
    }
    masters.sort();
    replicas.sort();
    ClusterView {
        nodes,
        masters,
        replicas,
        all_slots_served: served.iter().all(|w| *w == u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_give_masters_and_slot_coverage() {
        let text = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
a2 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922
a3 127.0.0.1:7002@17002 master - 0 0 3 connected 10923-16383
b1 127.0.0.1:7003@17003 slave a1 0 0 1 connected
b2 127.0.0.1:7004@17004 slave a2 0 0 2 connected
";
        let v = parse_cluster_nodes(text);
        assert_eq!(v.nodes, 5);
        assert_eq!(
            v.masters,
            ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"]
        );
        assert!(v.all_slots_served);
        // the master of 5461-10922 failed and nobody took its slots yet
        let failed = text.replace(
            "a2 127.0.0.1:7001@17001 master",
            "a2 127.0.0.1:7001@17001 master,fail",
        );
        let v = parse_cluster_nodes(&failed);
        assert_eq!(v.masters, ["127.0.0.1:7000", "127.0.0.1:7002"]);
        assert!(!v.all_slots_served);
        // one node's suspicion is not a failure
        let suspected = text.replace(
            "a2 127.0.0.1:7001@17001 master",
            "a2 127.0.0.1:7001@17001 master,fail?",
        );
        assert!(parse_cluster_nodes(&suspected).all_slots_served);
        // overlapping and absurd ranges neither overflow nor cover missing slots
        let odd = "a1 127.0.0.1:7000@17000 master - 0 0 1 connected 0-4294967295\n";
        assert!(parse_cluster_nodes(odd).all_slots_served);
        let twice = "a1 127.0.0.1:7000@17000 master - 0 0 1 connected 0-100 0-100\n";
        assert!(!parse_cluster_nodes(twice).all_slots_served);
        assert_eq!(v.replicas, ["127.0.0.1:7003", "127.0.0.1:7004"]);
    }
}
