//! One config generation: the validated conf and everything compiled from it for the
//! request path (route table, pools, each route's filter chain, the bot filter's rules, token
//! verification). A reload builds a new generation around the same `Shared` state and swaps
//! it in whole; a request loads one generation and keeps it to the end.

use crate::config::Config;
use crate::filters::botfilter::rules::Rules;
use crate::filters::botfilter::BotStage;
use crate::filters::identity::external::External;
use crate::filters::identity::Identity;
use crate::filters::limiter::{LimitStage, Policy};
use crate::filters::Kit;
use crate::routing::upstream::Pool;
use crate::routing::Router;
use crate::server::shared::Shared;
use std::collections::HashMap;
use std::sync::Arc;

pub struct Generation {
    pub number: u64,
    pub config: Arc<Config>,
    pub router: Router,
    pub pools: HashMap<String, Arc<Pool>>,
    /// Token verification, when `[auth]` is set; kept from the previous generation while
    /// its settings are unchanged (with its cache and the keys it read).
    pub identity: Option<Arc<Identity>>,
    /// The bot filter, when `[bot_filter]` is set (`/_edge/challenge/` answers through it).
    pub bot: Option<Arc<BotStage>>,
    /// `[[issuer]]` by name; kept from the previous generation while unchanged (with keys).
    pub issuers: HashMap<String, Arc<External>>,
}

/// A built generation and what the caller must start for it.
pub struct Built {
    pub generation: Generation,
    /// Pools that are new (their health checks are not running yet).
    pub fresh_pools: Vec<Arc<Pool>>,
    /// Token verification that reads its keys from a JWKS no generation has fetched yet: the
    /// reload fetches it before the swap, and is refused if it cannot.
    pub fresh_remote_identity: Option<Arc<Identity>>,
    /// External issuers no generation has read keys for: read before the swap.
    pub fresh_issuers: Vec<Arc<External>>,
}

impl Generation {
    /// Builds a generation, reusing from `previous` what did not change: pools (their health
    /// state and round-robin position) and token verification (its cache and keys).
    pub fn build(
        config: Config,
        shared: &Shared,
        previous: Option<&Generation>,
    ) -> Result<Built, String> {
        let mut pools = HashMap::with_capacity(config.upstreams.len());
        let mut fresh_pools = Vec::new();
        for spec in &config.upstreams {
            let reused = previous
                .and_then(|p| p.pools.get(&spec.name))
                .filter(|p| p.spec == *spec)
                .cloned();
            let pool = match reused {
                Some(pool) => pool,
                None => {
                    let pool = Arc::new(Pool::build(spec.clone())?);
                    fresh_pools.push(pool.clone());
                    pool
                }
            };
            pools.insert(spec.name.clone(), pool);
        }
        let policies: HashMap<String, Arc<Policy>> = config
            .limits
            .iter()
            .map(|l| {
                (
                    l.name.clone(),
                    Arc::new(Policy::compile(l, &config.rate_limit)),
                )
            })
            .collect();

        let mut fresh_remote_identity = None;
        let identity = match &config.identity {
            None => None,
            Some(spec) => match previous
                .and_then(|p| p.identity.as_ref())
                .filter(|i| i.spec() == spec)
            {
                Some(same) => Some(same.clone()),
                None => {
                    let identity = Identity::new(
                        spec.clone(),
                        shared.redis.clone(),
                        shared.identity_stats.clone(),
                    )?;
                    let adopted = previous
                        .and_then(|p| p.identity.as_ref())
                        .is_some_and(|old| identity.adopt_keys(old));
                    if identity.keys_are_remote() && !adopted && previous.is_some() {
                        fresh_remote_identity = Some(identity.clone());
                    }
                    Some(identity)
                }
            },
        };

        let mut issuers = HashMap::with_capacity(config.issuers.len());
        let mut fresh_issuers = Vec::new();
        for spec in &config.issuers {
            let old = previous.and_then(|p| p.issuers.get(&spec.name));
            let issuer = match old.filter(|o| o.spec == *spec) {
                Some(same) => same.clone(),
                None => {
                    let issuer = External::new(spec.clone())?;
                    if !old.is_some_and(|o| issuer.adopt_keys(o)) {
                        fresh_issuers.push(issuer.clone());
                    }
                    issuer
                }
            };
            issuers.insert(spec.name.clone(), issuer);
        }

        let bot = match &config.bot_filter {
            None => None,
            Some(spec) => {
                let unchanged = previous
                    .and_then(|p| p.bot.as_ref())
                    .is_some_and(|b| b.spec == *spec);
                if spec.secret.is_none() && !unchanged {
                    tracing::warn!(
                        "bot filter: no secret configured (bot_filter.secret or {}); passes are \
                         signed with a random key and work only on this replica until it restarts",
                        crate::config::BOT_SECRET_ENV
                    );
                }
                let answer_limit = spec
                    .answer_limit
                    .as_ref()
                    .and_then(|name| policies.get(name).cloned())
                    .map(|policy| {
                        LimitStage::new(
                            shared.limiter.clone(),
                            vec![policy],
                            "bot-filter-answer",
                            config.rate_limit.headers_on_success,
                        )
                    });
                Some(Arc::new(BotStage {
                    bot: shared.bot.clone(),
                    rules: Rules::build(spec)?,
                    spec: spec.clone(),
                    answer_limit,
                }))
            }
        };

        let kit = Kit {
            limiter: &shared.limiter,
            headers_on_success: config.rate_limit.headers_on_success,
            bot: bot.as_ref(),
            identity: identity.as_ref(),
            issuers: &issuers,
            metrics: &shared.route_metrics,
        };
        let router = Router::build(&config.routes, &pools, &policies, &kit)?;
        Ok(Built {
            generation: Generation {
                number: previous.map_or(1, |p| p.number + 1),
                config: Arc::new(config),
                router,
                pools,
                identity,
                bot,
                issuers,
            },
            fresh_pools,
            fresh_remote_identity,
            fresh_issuers,
        })
    }

    /// Applies what this generation changes in the shared state (the limiter's breaker).
    pub fn retune(&self, shared: &Shared) {
        shared.limiter.tune(&self.config.rate_limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[[listener]]
address = "127.0.0.1:1"

[upstream.u]
servers = ["127.0.0.1:9"]

[limit.per-ip]
key = "ip"
rate = "10/s"

[limit.per-user]
key = "user"
rate = "10/s"

[[route]]
name = "open"
path = "/"
upstream = "u"

[[route]]
name = "account"
path = "/account"
upstream = "u"
auth = "required"
limits = ["per-user", "per-ip"]

[auth]
jwks_url = "http://127.0.0.1:9/jwks"
issuer = "i"
audience = "a"
"#;

    fn load(extra: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("edge.toml"), format!("{BASE}\n{extra}")).unwrap();
        crate::config::load(dir.path()).unwrap()
    }

    fn chain(g: &Generation, path: &str) -> Vec<&'static str> {
        g.router.find(None, path).unwrap().filters.names()
    }

    #[test]
    fn each_route_gets_the_filters_it_needs_in_order_of_cost() {
        let shared = Shared::new(
            None,
            &Default::default(),
            None,
            crate::server::connections::ClientConnections::new(0, Default::default(), vec![]),
            Default::default(),
        );
        let g = Generation::build(load(""), &shared, None)
            .unwrap()
            .generation;
        assert!(chain(&g, "/").is_empty());
        assert_eq!(
            chain(&g, "/account"),
            ["rate_limit", "identity", "rate_limit"]
        );

        let bot = "[bot_filter]\nsecret = \"0123456789abcdef0123456789abcdef\"\n";
        let next = Generation::build(load(bot), &shared, Some(&g)).unwrap();
        let g2 = next.generation;
        assert_eq!(g2.number, 2);
        assert_eq!(chain(&g2, "/"), ["bot_filter"]);
        assert_eq!(
            chain(&g2, "/account"),
            ["rate_limit", "bot_filter", "identity", "rate_limit"]
        );
        // unchanged token settings keep their identity (cache, keys); pools are reused
        assert!(Arc::ptr_eq(
            g.identity.as_ref().unwrap(),
            g2.identity.as_ref().unwrap()
        ));
        assert!(next.fresh_remote_identity.is_none());
        assert!(next.fresh_pools.is_empty());

        // a new audience: a new identity, which keeps the keys of the same JWKS
        let mut config = load("");
        if let Some(s) = config.identity.as_mut() {
            s.audience = "b".into();
        }
        let g3 = Generation::build(config, &shared, Some(&g2)).unwrap();
        let new = g3.generation.identity.as_ref().unwrap();
        assert!(!Arc::ptr_eq(new, g2.identity.as_ref().unwrap()));
        assert!(g3.fresh_remote_identity.is_none(), "same key source");

        // another JWKS: fetched before the swap (the reload is refused if it cannot be)
        let mut config = load("");
        if let Some(s) = config.identity.as_mut() {
            s.keys = crate::config::KeysFrom::Jwks {
                url: "http://127.0.0.1:9/other".into(),
            };
        }
        let g4 = Generation::build(config, &shared, Some(&g3.generation)).unwrap();
        assert!(g4.fresh_remote_identity.is_some(), "a new key source");
    }
}
