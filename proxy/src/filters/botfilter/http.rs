//! The bot filter's side of a request: screening a routed request (and answering it with a
//! challenge when the rules say so), and `POST /_edge/challenge/{id}`.
//!
//! Challenges are `403` with `Edge-Challenge: math`: not `401`, which apps read as "session
//! expired" and answer by signing the viewer out, and not `429`, which says "wait and retry"
//! when waiting does not help and answering does. Lockouts are `429` with `Retry-After`.

use super::page::{self, Lang};
use super::{Answered, BotFilter, BotStage, Failure, Issued, Screen};
use crate::config::BotFilterSpec;
use crate::filters::{Flow, RequestFilter};
use crate::proxy::ctx::RequestCtx;
use crate::proxy::error::EdgeError;
use crate::proxy::respond;
use crate::routing::Route;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

pub const ANSWER_PREFIX: &str = "/_edge/challenge/";
const CHALLENGE_HEADER: &str = "edge-challenge";
/// An answer form or JSON is a few dozen bytes.
const MAX_ANSWER_BODY: usize = 2048;

fn now_us() -> u64 {
    auth_core::plumbing::clock::unix_micros()
}

impl RequestFilter for BotStage {
    fn name(&self) -> &'static str {
        "bot_filter"
    }

    async fn filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        _route: &Route,
    ) -> Result<Flow> {
        let answered = guard(&self.bot, &self.rules, &self.spec, session, ctx).await?;
        Ok(if answered {
            Flow::Answered
        } else {
            Flow::Continue
        })
    }
}

impl BotStage {
    /// `POST /_edge/challenge/{id}`, behind the answer limit.
    pub async fn answer(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        if let Some(limit) = &self.answer_limit {
            if limit.apply(session, ctx).await? == Flow::Answered {
                return Ok(());
            }
        }
        answer(&self.bot, &self.spec, session, ctx).await
    }
}

/// Screens a routed request. True when it was answered (challenge, lockout, deny, 429, 503).
async fn guard(
    bot: &BotFilter,
    rules: &super::rules::Rules,
    spec: &BotFilterSpec,
    session: &mut Session,
    ctx: &RequestCtx,
) -> Result<bool> {
    let (Some(ip), Some(network)) = (ctx.client_ip, ctx.client_net) else {
        return Ok(false);
    };
    let now = now_us();
    match bot.screen_client(rules, spec, session.req_header(), ip, network, now) {
        Screen::Pass => Ok(false),
        Screen::Deny { rule } => {
            tracing::debug!(request_id = ctx.request_id.to_str().unwrap_or(""), rule = %rule, "bot filter: request denied");
            respond::error(session, &EdgeError::BotDenied, &ctx.request_id).await?;
            Ok(true)
        }
        Screen::PassLimited { retry_after_secs } => {
            let err = EdgeError::RateLimited {
                retry_after: retry_after_secs,
            };
            respond::error(session, &err, &ctx.request_id).await?;
            Ok(true)
        }
        Screen::Challenge(client) => {
            if let Err(retry_after) = bot.may_ask(spec, &client, now) {
                let err = EdgeError::RateLimited { retry_after };
                respond::error(session, &err, &ctx.request_id).await?;
                return Ok(true);
            }
            let issued = match bot.challenge(spec, &client, now / 1000).await {
                Ok(issued) => issued,
                Err(super::Unavailable) => {
                    respond::error(session, &EdgeError::ChallengeUnavailable, &ctx.request_id)
                        .await?;
                    return Ok(true);
                }
            };
            let return_to = session
                .req_header()
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            let shape = Shape::of(session, spec);
            write_challenge(session, &issued, None, shape, &return_to, ctx).await?;
            Ok(true)
        }
    }
}

/// JSON for apps, HTML (in the viewer's language) for browsers.
#[derive(Clone, Copy)]
enum Shape {
    Json,
    Html(Lang),
}

impl Shape {
    fn of(session: &Session, spec: &BotFilterSpec) -> Shape {
        let h = &session.req_header().headers;
        let header = |name: http::header::HeaderName| h.get(name).and_then(|v| v.to_str().ok());
        let json = header(http::header::ACCEPT).is_some_and(|a| a.contains("application/json"))
            || header(http::header::CONTENT_TYPE)
                .is_some_and(|c| c.starts_with("application/json"))
            || spec
                .app_header
                .as_ref()
                .is_some_and(|name| h.contains_key(name));
        if json {
            Shape::Json
        } else {
            Shape::Html(Lang::from_accept_language(header(
                http::header::ACCEPT_LANGUAGE,
            )))
        }
    }
}

async fn write_challenge(
    session: &mut Session,
    issued: &Issued,
    why: Option<Failure>,
    shape: Shape,
    return_to: &str,
    ctx: &RequestCtx,
) -> Result<()> {
    let rid = ctx.request_id.to_str().unwrap_or("");
    let (content_type, body) = match shape {
        Shape::Json => ("application/json", page::json_body(issued, why, rid)),
        Shape::Html(lang) => (
            "text/html; charset=utf-8",
            page::html(issued, why, lang, return_to),
        ),
    };
    let (status, retry_after) = match issued {
        Issued::Question { .. } => (403, None),
        Issued::Locked { retry_after } => (429, Some(page::whole_seconds(*retry_after))),
    };
    respond::full(
        session,
        status,
        content_type,
        Bytes::from(body),
        &ctx.request_id,
        |h| {
            if matches!(shape, Shape::Html(_)) {
                for (name, value) in crate::proxy::header_rules::HTML_SECURITY {
                    h.insert_header(*name, *value)?;
                }
            }
            if let Some(secs) = retry_after {
                h.insert_header(http::header::RETRY_AFTER, secs)?;
            } else {
                h.insert_header(CHALLENGE_HEADER, "math")?;
            }
            Ok(())
        },
    )
    .await
}

/// What an answer carries, from JSON `{"answer": "12", "return_to": "/x"}` or a form.
struct AnswerBody {
    answer: String,
    return_to: String,
}

fn parse_answer(body: &[u8], json: bool) -> Option<AnswerBody> {
    let (answer, return_to) = if json {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let answer = match &v["answer"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => return None,
        };
        (answer, v["return_to"].as_str().map(str::to_string))
    } else {
        let mut answer = None;
        let mut return_to = None;
        for (k, v) in form_urlencoded::parse(body) {
            match &*k {
                "answer" => answer = Some(v.into_owned()),
                "return_to" => return_to = Some(v.into_owned()),
                _ => {}
            }
        }
        (answer?, return_to)
    };
    Some(AnswerBody {
        answer,
        return_to: return_to
            .filter(|r| is_local_path(r))
            .unwrap_or_else(|| "/".into()),
    })
}

/// Only a path on this site: no scheme, no `//host`, no backslash tricks, no control bytes.
fn is_local_path(r: &str) -> bool {
    r.starts_with('/')
        && !r.starts_with("//")
        && !r.contains('\\')
        && r.len() <= 2048
        && r.bytes().all(|b| b > b' ' && b != 0x7f)
}

async fn read_body(session: &mut Session) -> Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    while let Some(chunk) = session.read_request_body().await? {
        if body.len() + chunk.len() > MAX_ANSWER_BODY {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// `POST /_edge/challenge/{id}`: a pass for a right answer, otherwise a new question or a
/// lockout. Fails closed (503) when the store is unreachable.
async fn answer(
    bot: &BotFilter,
    spec: &BotFilterSpec,
    session: &mut Session,
    ctx: &RequestCtx,
) -> Result<()> {
    let rid = &ctx.request_id;
    if session.req_header().method != http::Method::POST {
        return respond::error(session, &EdgeError::BadRequest("answer with POST"), rid).await;
    }
    let Some(network) = ctx.client_net else {
        return respond::error(session, &EdgeError::BadRequest("no client address"), rid).await;
    };
    let id = session
        .req_header()
        .uri
        .path()
        .strip_prefix(ANSWER_PREFIX)
        .unwrap_or("")
        .to_string();
    let shape = Shape::of(session, spec);
    let Some(body) = read_body(session).await? else {
        return respond::error(
            session,
            &EdgeError::BadRequest("answer body too large"),
            rid,
        )
        .await;
    };
    let Some(form) = parse_answer(&body, matches!(shape, Shape::Json)) else {
        return respond::error(
            session,
            &EdgeError::BadRequest("no answer in the body"),
            rid,
        )
        .await;
    };
    let ua = session
        .req_header()
        .headers
        .get(http::header::USER_AGENT)
        .map_or(&b""[..], |v| v.as_bytes());
    let client = super::fingerprint::Client::new(network, ua);
    let id_ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let id = if id_ok { id } else { "-".to_string() };
    match bot
        .answer(spec, &id, &form.answer, &client, now_us() / 1000)
        .await
    {
        Err(super::Unavailable) => {
            respond::error(session, &EdgeError::ChallengeUnavailable, rid).await
        }
        Ok(Answered::Failed { why, next }) => {
            tracing::info!(request_id = rid.to_str().unwrap_or(""), client = %client.id, reason = page::reason_code(why), "bot filter: answer refused");
            write_challenge(session, &next, Some(why), shape, &form.return_to, ctx).await
        }
        Ok(Answered::Passed(pass)) => {
            let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
            let cookie = format!(
                "{}={}; Max-Age={}; Path=/; HttpOnly; SameSite=Lax{}",
                spec.cookie,
                pass.token,
                spec.pass_ttl.as_secs(),
                if tls { "; Secure" } else { "" }
            );
            let set = |h: &mut ResponseHeader| {
                h.insert_header(http::header::SET_COOKIE, &cookie)?;
                h.insert_header(super::PASS_HEADER, &pass.token)
            };
            match shape {
                Shape::Json => {
                    let body = serde_json::json!({
                        "pass": pass.token,
                        "expires_in": spec.pass_ttl.as_secs(),
                        "request_id": rid.to_str().unwrap_or(""),
                    });
                    respond::full(
                        session,
                        200,
                        "application/json",
                        Bytes::from(body.to_string()),
                        rid,
                        set,
                    )
                    .await
                }
                // back to the page the viewer wanted, now with the cookie
                Shape::Html(_) => {
                    respond::full(session, 303, "text/plain", Bytes::new(), rid, |h| {
                        h.insert_header(http::header::LOCATION, &form.return_to)?;
                        set(h)
                    })
                    .await
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_from_forms_and_json_and_return_to_stays_local() {
        let f = parse_answer(b"answer=12&return_to=%2Fapi%2Fv1%2Fmovies%3Fp%3D2", false).unwrap();
        assert_eq!(
            (f.answer.as_str(), f.return_to.as_str()),
            ("12", "/api/v1/movies?p=2")
        );
        let j = parse_answer(br#"{"answer": 7}"#, true).unwrap();
        assert_eq!((j.answer.as_str(), j.return_to.as_str()), ("7", "/"));
        for evil in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil",
            "javascript:x",
            "/a\nb",
        ] {
            let body = format!(
                "answer=1&return_to={}",
                form_urlencoded::byte_serialize(evil.as_bytes()).collect::<String>()
            );
            assert_eq!(
                parse_answer(body.as_bytes(), false).unwrap().return_to,
                "/",
                "{evil}"
            );
        }
        assert!(parse_answer(b"return_to=/x", false).is_none());
        assert!(parse_answer(b"{not json", true).is_none());
        assert!(parse_answer(br#"{"answer": [1]}"#, true).is_none());
    }
}
