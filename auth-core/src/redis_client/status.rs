//! What the watcher last saw of the topology, for `/_edge/ready` and `/_edge/metrics`.

use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

#[derive(Default)]
pub struct Status {
    /// Data nodes known (cluster: from CLUSTER NODES; otherwise the master, once found).
    nodes: AtomicU64,
    /// Every master answers (standalone and Sentinel: PING/ROLE; cluster: every slot served).
    reachable: AtomicBool,
    /// Masters replaced since start (a Sentinel or Cluster failover, seen by the watcher).
    failovers: AtomicU64,
    /// The master(s) in force, "host:port" each.
    masters: ArcSwap<Vec<String>>,
    /// The last failure to read the topology, for ready ("" when the last look worked).
    error: ArcSwap<String>,
}

/// A copy of `Status` at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyView {
    pub nodes: u64,
    pub reachable: bool,
    pub failovers: u64,
    pub masters: Vec<String>,
    pub error: String,
}

impl Status {
    pub fn view(&self) -> TopologyView {
        TopologyView {
            nodes: self.nodes.load(Relaxed),
            reachable: self.reachable.load(Relaxed),
            failovers: self.failovers.load(Relaxed),
            masters: self.masters.load().as_ref().clone(),
            error: self.error.load().as_ref().clone(),
        }
    }

    pub(super) fn masters(&self) -> Arc<Vec<String>> {
        self.masters.load_full()
    }

    /// Records a successful look; returns whether the reachability changed (log it once).
    pub(super) fn seen(&self, nodes: u64, masters: Vec<String>, reachable: bool) -> bool {
        self.nodes.store(nodes, Relaxed);
        self.masters.store(Arc::new(masters));
        if !self.error.load().is_empty() {
            self.error.store(Arc::default());
        }
        self.reachable.swap(reachable, Relaxed) != reachable
    }

    /// Records a failed look; returns whether this is news (the first failure after a success).
    pub(super) fn failed(&self, error: String) -> bool {
        let was = self.reachable.swap(false, Relaxed);
        let news = was || self.error.load().is_empty();
        self.error.store(Arc::new(error));
        news
    }

    pub(super) fn failover(&self) {
        self.failovers.fetch_add(1, Relaxed);
    }
}
