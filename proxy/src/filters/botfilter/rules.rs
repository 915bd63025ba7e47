//! Rules compiled from `[[bot_filter.rule]]` (part of a config generation, rebuilt on reload).
//! A rule holds when every condition it sets holds; the first rule that holds decides. The
//! cheap, local conditions (path, client, headers, User-Agent) are checked before the
//! signals (request rate, recent failures), which need the client's fingerprint.

use crate::config::{BotAction, BotFilterSpec};
use crate::filters::limiter::Bucket;
use pingora::http::RequestHeader;
use regex::Regex;
use std::net::IpAddr;

pub struct Rule {
    pub name: String,
    user_agent: Option<Regex>,
    paths: Vec<String>,
    clients: Vec<ipnet::IpNet>,
    headers: Vec<(http::HeaderName, Regex)>,
    /// More than the bucket allows: requests per window as GCRA (rate, burst = requests).
    pub rate: Option<Bucket>,
    pub failed_challenges: Option<u32>,
    pub action: BotAction,
}

pub struct Rules {
    pub rules: Vec<Rule>,
}

impl Rules {
    pub fn build(spec: &BotFilterSpec) -> Result<Rules, String> {
        let regex = |src: &str| Regex::new(src).map_err(|e| format!("bot filter regex: {e}"));
        let rules = spec
            .rules
            .iter()
            .map(|r| {
                Ok(Rule {
                    name: r.name.clone(),
                    user_agent: r.user_agent.as_deref().map(regex).transpose()?,
                    paths: r.paths.clone(),
                    clients: r.clients.clone(),
                    headers: r
                        .headers
                        .iter()
                        .map(|(h, src)| Ok((h.clone(), regex(src)?)))
                        .collect::<Result<_, String>>()?,
                    rate: r.rate.map(|(requests, window)| {
                        Bucket::new(requests as f64 / window.as_secs_f64().max(0.001), requests)
                    }),
                    failed_challenges: r.failed_challenges,
                    action: r.action,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Rules { rules })
    }
}

impl Rule {
    /// The conditions that need no state: path, client network, headers, User-Agent.
    pub fn matches_request(&self, req: &RequestHeader, ip: IpAddr) -> bool {
        let path = req.uri.path();
        if !self.paths.is_empty()
            && !self
                .paths
                .iter()
                .any(|p| crate::routing::prefix_matches(p, path))
        {
            return false;
        }
        if !self.clients.is_empty() && !self.clients.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        let header = |name: &http::HeaderName| req.headers.get(name).and_then(|v| v.to_str().ok());
        if !self
            .headers
            .iter()
            .all(|(name, re)| header(name).is_some_and(|v| re.is_match(v)))
        {
            return false;
        }
        match &self.user_agent {
            Some(re) => header(&http::header::USER_AGENT).is_some_and(|ua| re.is_match(ua)),
            None => true,
        }
    }

    pub fn has_signals(&self) -> bool {
        self.rate.is_some() || self.failed_challenges.is_some()
    }
}
