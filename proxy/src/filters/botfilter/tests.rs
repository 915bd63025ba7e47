//! The filter's decisions with a controlled clock, and the question → answer → pass cycle on
//! the in-memory store.

use super::*;
use crate::config::{BotAction, BotRuleSpec};

const TV: &str = "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.5) AppleWebKit/537.36 TV Safari/537.36";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn spec(rules: Vec<BotRuleSpec>) -> BotFilterSpec {
    BotFilterSpec {
        secret: Some(SECRET.to_vec()),
        pass_ttl: Duration::from_secs(2700),
        challenge_ttl: Duration::from_secs(120),
        min_answer_time: Duration::from_millis(1500),
        max_failures: 3,
        failure_window: Duration::from_secs(600),
        lockouts: vec![Duration::from_secs(60), Duration::from_secs(300)],
        app_header: None,
        pass_rate: 2.0,
        pass_burst: 3,
        cookie: "edge_pass".into(),
        answer_limit: None,
        rules,
    }
}

fn tv_rule() -> BotRuleSpec {
    BotRuleSpec {
        name: "tv-fast".into(),
        user_agent: Some("(?i)smart-tv|tizen".into()),
        paths: vec!["/api/v1".into()],
        clients: vec![],
        headers: vec![],
        rate: Some((5, Duration::from_secs(10))),
        failed_challenges: None,
        action: BotAction::Challenge,
    }
}

fn request(path: &str, ua: &str, extra: &[(&str, &str)]) -> RequestHeader {
    let mut r = RequestHeader::build("GET", path.as_bytes(), None).unwrap();
    r.insert_header("user-agent", ua).unwrap();
    for (k, v) in extra {
        r.insert_header(k.to_string(), *v).unwrap();
    }
    r
}

/// Reads "a + b = ?" or "a × b + c = ?".
fn solve(text: &str) -> u32 {
    let expr = text.trim_end_matches(" = ?");
    let (left, right) = expr.rsplit_once(" + ").unwrap();
    let left = match left.split_once(" × ") {
        Some((a, b)) => a.parse::<u32>().unwrap() * b.parse::<u32>().unwrap(),
        None => left.parse().unwrap(),
    };
    left + right.parse::<u32>().unwrap()
}

const IP: &str = "198.51.100.7";

#[test]
fn a_tv_at_a_human_rate_is_untouched_and_a_fast_one_is_challenged() {
    let s = spec(vec![tv_rule()]);
    let rules = Rules::build(&s).unwrap();
    let bot = BotFilter::new(None);
    let ip: IpAddr = IP.parse().unwrap();
    let mut now = 1_000_000_000u64;
    // one request every 2.5 s: never above 5 per 10 s
    for _ in 0..20 {
        assert_eq!(
            bot.screen(&rules, &s, &request("/api/v1/movies", TV, &[]), ip, now),
            Screen::Pass
        );
        now += 2_500_000;
    }
    // a burst: the first five pass, the sixth is challenged
    for _ in 0..5 {
        assert_eq!(
            bot.screen(&rules, &s, &request("/api/v1/movies", TV, &[]), ip, now),
            Screen::Pass
        );
    }
    assert!(matches!(
        bot.screen(&rules, &s, &request("/api/v1/movies", TV, &[]), ip, now),
        Screen::Challenge(_)
    ));
    // other paths, other agents: not this rule's business
    assert_eq!(
        bot.screen(&rules, &s, &request("/static/x", TV, &[]), ip, now),
        Screen::Pass
    );
    for _ in 0..20 {
        assert_eq!(
            bot.screen(
                &rules,
                &s,
                &request("/api/v1/movies", "Mozilla/5.0 (X11; Linux)", &[]),
                ip,
                now
            ),
            Screen::Pass
        );
    }
}

#[test]
fn deny_and_allow_rules_decide_in_order() {
    let allow = BotRuleSpec {
        name: "office".into(),
        user_agent: None,
        paths: vec![],
        clients: vec!["198.51.100.0/24".parse().unwrap()],
        headers: vec![],
        rate: None,
        failed_challenges: None,
        action: BotAction::Allow,
    };
    let deny = BotRuleSpec {
        name: "scrapers".into(),
        user_agent: Some("(?i)python-requests".into()),
        headers: vec![("x-probe".parse().unwrap(), "^yes$".into())],
        clients: vec![],
        action: BotAction::Deny,
        ..allow.clone()
    };
    let s = spec(vec![allow, deny]);
    let rules = Rules::build(&s).unwrap();
    let bot = BotFilter::new(None);
    let req = request("/", "python-requests/2.31", &[("x-probe", "yes")]);
    assert_eq!(
        bot.screen(&rules, &s, &req, IP.parse().unwrap(), 0),
        Screen::Pass,
        "allowed first"
    );
    assert_eq!(
        bot.screen(&rules, &s, &req, "203.0.113.1".parse().unwrap(), 0),
        Screen::Deny {
            rule: "scrapers".into()
        }
    );
    let no_header = request("/", "python-requests/2.31", &[]);
    assert_eq!(
        bot.screen(&rules, &s, &no_header, "203.0.113.1".parse().unwrap(), 0),
        Screen::Pass
    );
}

#[tokio::test]
async fn a_human_paced_right_answer_earns_a_pass_that_is_rate_limited() {
    let s = spec(vec![tv_rule()]);
    let rules = Rules::build(&s).unwrap();
    let bot = BotFilter::new(None);
    let ip: IpAddr = IP.parse().unwrap();
    let client = Client::for_ip(ip, TV.as_bytes());
    let t0 = 1_800_000_000_000u64; // ms
    let Issued::Question { id, question, .. } = bot.challenge(&s, &client, t0).await.unwrap()
    else {
        panic!("locked")
    };
    let answer = solve(&question.text).to_string();
    // too fast: refused, counted, and the question is spent
    let Answered::Failed { why, next } = bot
        .answer(&s, &id, &answer, &client, t0 + 500)
        .await
        .unwrap()
    else {
        panic!("a 0.5 s answer passed")
    };
    assert_eq!(why, Failure::TooFast);
    let Issued::Question { id, question, .. } = next else {
        panic!("locked")
    };
    let t1 = t0 + 1_000;
    let answer = solve(&question.text).to_string();
    // from another network: refused
    let elsewhere = Client::for_ip("203.0.113.9".parse().unwrap(), TV.as_bytes());
    let Answered::Failed { why, next } = bot
        .answer(&s, &id, &answer, &elsewhere, t1 + 2_000)
        .await
        .unwrap()
    else {
        panic!("answered from elsewhere")
    };
    assert_eq!(why, Failure::OtherClient);
    assert!(
        matches!(next, Issued::Question { .. }),
        "the other client gets its own question"
    );
    let Issued::Question { id, question, .. } =
        bot.challenge(&s, &client, t1 + 2_000).await.unwrap()
    else {
        panic!("locked")
    };
    let answer = solve(&question.text).to_string();
    let Answered::Passed(pass) = bot
        .answer(&s, &id, &answer, &client, t1 + 4_000)
        .await
        .unwrap()
    else {
        panic!("a right answer at human speed failed")
    };
    // replay of the same id: gone
    let Answered::Failed { why, .. } = bot
        .answer(&s, &id, &answer, &client, t1 + 5_000)
        .await
        .unwrap()
    else {
        panic!("replay passed")
    };
    assert_eq!(why, Failure::Expired);

    // with the pass, the fast TV goes through, up to the pass's own limit (burst 3)
    let now_us = (t1 + 6_000) * 1000;
    for _ in 0..5 {
        let _ = bot.screen(&rules, &s, &request("/api/v1/x", TV, &[]), ip, now_us);
    }
    let with_pass = request("/api/v1/x", TV, &[("x-edge-pass", &pass.token)]);
    for _ in 0..3 {
        assert_eq!(bot.screen(&rules, &s, &with_pass, ip, now_us), Screen::Pass);
    }
    assert!(matches!(
        bot.screen(&rules, &s, &with_pass, ip, now_us),
        Screen::PassLimited { .. }
    ));
    // the cookie works too, but not from another User-Agent
    let cookie = format!("edge_pass={}", pass.token);
    let later = now_us + 10_000_000;
    assert_eq!(
        bot.screen(
            &rules,
            &s,
            &request("/api/v1/x", TV, &[("cookie", &cookie)]),
            ip,
            later
        ),
        Screen::Pass
    );
    let other_tv = "Roku/DVP-12.0 SMART-TV";
    for _ in 0..5 {
        let _ = bot.screen(&rules, &s, &request("/api/v1/x", other_tv, &[]), ip, later);
    }
    assert!(matches!(
        bot.screen(
            &rules,
            &s,
            &request("/api/v1/x", other_tv, &[("cookie", &cookie)]),
            ip,
            later
        ),
        Screen::Challenge(_)
    ));
    assert_eq!(bot.counters.passed.load(Relaxed), 1);
    assert_eq!(bot.counters.failed.load(Relaxed), 2);
}

#[tokio::test]
async fn guessing_locks_out_and_questions_get_harder() {
    let s = spec(vec![tv_rule()]);
    let bot = BotFilter::new(None);
    let client = Client::for_ip(IP.parse().unwrap(), TV.as_bytes());
    let t = 1_800_000_000_000u64;
    let Issued::Question { mut id, .. } = bot.challenge(&s, &client, t).await.unwrap() else {
        panic!()
    };
    let mut levels = vec![];
    for attempt in 1..=3 {
        // each new question is answered two seconds after it was asked
        match bot
            .answer(&s, &id, "999999", &client, t + 2_000 * attempt)
            .await
            .unwrap()
        {
            Answered::Failed {
                why: Failure::Wrong,
                next:
                    Issued::Question {
                        id: next, question, ..
                    },
            } => {
                assert!(attempt < 3, "the third failure must lock out");
                levels.push(question.text.contains('×') as u8 + (question.answer > 18) as u8);
                id = next;
            }
            Answered::Failed {
                why: Failure::Wrong,
                next: Issued::Locked { retry_after },
            } => {
                assert_eq!(attempt, 3);
                assert_eq!(retry_after, Duration::from_secs(60));
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        levels[1] >= 1,
        "the question after two failures is harder: {levels:?}"
    );
    // locked: a new challenge is a lockout, not a question
    assert!(matches!(
        bot.challenge(&s, &client, t + 7_000).await.unwrap(),
        Issued::Locked { .. }
    ));
    assert_eq!(bot.counters.locked.load(Relaxed), 1);
    // the lockout ends; three more misses lock out for longer
    let t2 = t + 67_000;
    let Issued::Question { mut id, .. } = bot.challenge(&s, &client, t2).await.unwrap() else {
        panic!("still locked")
    };
    let mut last = None;
    for i in 1..=3 {
        if let Answered::Failed { next, .. } = bot
            .answer(&s, &id, "0", &client, t2 + 2_000 * i)
            .await
            .unwrap()
        {
            match next {
                Issued::Question { id: n, .. } => id = n,
                Issued::Locked { retry_after } => last = Some(retry_after),
            }
        }
    }
    assert_eq!(
        last,
        Some(Duration::from_secs(300)),
        "the second lockout is longer"
    );
}

#[test]
fn the_shipped_rules_know_every_tv_marker_and_leave_other_clients_alone() {
    let conf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf");
    let config = crate::config::load(&conf).expect("conf/ loads");
    let s = config.bot_filter.expect("conf/ has [bot_filter]");
    let rules = Rules::build(&s).unwrap();
    let tv_burst = rules.rules.iter().find(|r| r.name == "tv-burst").unwrap();
    let tvs = [
        "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0.3809.146/6.0 TV Safari/537.36",
        "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.79 Safari/537.36 WebAppManager",
        "Mozilla/5.0 (DirectFB; Linux armv7l) AppleWebKit/534.26+ (KHTML, like Gecko) Version/5.0 Safari/534.26+ LG Browser/5.00.00(+mouse+3D+SCREEN+TUNER; LGE; 42LM6700-ZA; 04.41.03; 0x00000001;); LG NetCast.TV-2012 0",
        "HbbTV/1.5.1 (+DRM; Vestel; MB130; 3.25.10.1; ; _TV_G31_2017;)",
        "Mozilla/5.0 (Linux; Android 10; BRAVIA 4K VH2 Build/QTG3.200305.006.S292) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.120 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 11; Android TV on MStar) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/94.0 Safari/537.36",
        "Mozilla/5.0 (Linux; Android 12; Chromecast) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/112.0 Safari/537.36 GoogleTV",
        "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7233; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/70.0.3538.110 Mobile Safari/537.36",
        "Roku/DVP-9.10 (519.10E04111A)",
        "AppleTV11,1/11.1",
        "Kinopoisk/5.1 (com.example.tv; build:512; tvOS 17.1.0) Alamofire/5.6.4",
        "Mozilla/5.0 (Linux; VIDAA/6.0(Hisense;SmartTV;43A6BG;Linux;)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91 Safari/537.36",
        "Mozilla/5.0 (Linux; Android 9; MiTV-MSSP1 Build/PTT1.190826.001) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/88 Safari/537.36",
        "Dalvik/2.1.0 (Linux; U; Android 9; MIBOX4 Build/PI)",
        "Opera/9.80 (Linux mips; U; HbbTV/1.1.1 (; Philips; ; ; ; ) CE-HTML/1.0 NETTV/3.2.1; en) Presto/2.6.33 Version/10.70",
        "Mozilla/5.0 (Linux; Android 9; YNDX-000SB Build/PTT1.190826.001) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/97 Safari/537.36",
        "Mozilla/5.0 (Linux; Android 9; SberBox Build/PI) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/92 Safari/537.36",
    ];
    let others = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0 after-hours",
        "curl/8.5.0",
    ];
    let ip: IpAddr = IP.parse().unwrap();
    for ua in tvs {
        assert!(
            tv_burst.matches_request(&request("/api/v1/movies", ua, &[]), ip),
            "a TV: {ua}"
        );
    }
    for ua in others {
        assert!(
            !tv_burst.matches_request(&request("/api/v1/movies", ua, &[]), ip),
            "not a TV: {ua}"
        );
    }
    assert!(
        !tv_burst.matches_request(&request("/auth/login", tvs[0], &[]), ip),
        "only /api/v1"
    );
    assert_eq!(
        tv_burst.rate,
        Some(crate::filters::limiter::Bucket::new(2.0, 20))
    );
}

#[test]
fn a_client_gets_a_bounded_number_of_questions() {
    let s = spec(vec![tv_rule()]);
    let bot = BotFilter::new(None);
    let client = Client::for_ip(IP.parse().unwrap(), TV.as_bytes());
    let t0 = 1_800_000_000_000_000u64; // µs
    for _ in 0..MAX_OPEN_QUESTIONS {
        assert!(bot.may_ask(&s, &client, t0).is_ok());
    }
    let wait = bot.may_ask(&s, &client, t0).unwrap_err();
    // one more every challenge_ttl / MAX_OPEN_QUESTIONS = 40 s
    assert_eq!(wait, 40);
    let other = Client::for_ip("192.0.2.1".parse().unwrap(), TV.as_bytes());
    assert!(bot.may_ask(&s, &other, t0).is_ok(), "per client");
    assert!(bot.may_ask(&s, &client, t0 + 40_000_000).is_ok());
    assert!(bot.may_ask(&s, &client, t0 + 40_000_000).is_err());
    // a network that varies its User-Agent: 10 questions in all, then refused
    let later = t0 + 3_600_000_000;
    let asked = (0..30)
        .filter(|i| {
            let ua = format!("{TV} v{i}");
            let c = Client::for_ip("203.0.113.9".parse().unwrap(), ua.as_bytes());
            bot.may_ask(&s, &c, later).is_ok()
        })
        .count();
    assert_eq!(asked as u64, MAX_OPEN_QUESTIONS_PER_NETWORK);
}
