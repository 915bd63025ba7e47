//! Calls to providers: a timeout on every call, redirects not followed (a token endpoint that
//! redirects is misconfigured or hijacked), and bodies read up to a cap, so a slow or hostile
//! provider costs one bounded request and becomes a 502, never a hang.

use super::settings::SocialSettings;
use oauth2::{HttpRequest, HttpResponse};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("{0}")]
    Request(String),
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
}

#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    max_bytes: usize,
}

impl Outbound {
    pub fn new(s: &SocialSettings) -> Result<Outbound, OutboundError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(s.http_timeout)
            .connect_timeout(s.http_timeout.min(Duration::from_secs(3)))
            .user_agent(concat!("cinema-edge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OutboundError::Request(format!("http client: {e}")))?;
        Ok(Outbound {
            client,
            max_bytes: s.max_response_bytes,
        })
    }

    /// The `oauth2` crate's HTTP client: its requests go through the same bounds.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, OutboundError> {
        let (parts, body) = request.into_parts();
        let mut builder = self
            .client
            .request(parts.method, parts.uri.to_string())
            .body(body);
        for (name, value) in &parts.headers {
            builder = builder.header(name, value);
        }
        self.execute(builder).await
    }

    /// Sends a request built on this client and reads its whole (bounded) answer.
    pub async fn execute(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<HttpResponse, OutboundError> {
        let mut response = builder.send().await.map_err(describe)?;
        if response.status().is_redirection() {
            return Err(OutboundError::Request(format!(
                "answered {} (a redirect, not followed)",
                response.status()
            )));
        }
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(OutboundError::TooLarge(self.max_bytes));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(OutboundError::TooLarge(self.max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        let mut out = http::Response::new(body);
        *out.status_mut() = response.status();
        *out.headers_mut() = std::mem::take(response.headers_mut());
        Ok(out)
    }

    pub fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.client.get(url)
    }

    pub fn post(&self, url: &str) -> reqwest::RequestBuilder {
        self.client.post(url)
    }
}

/// reqwest's message plus its cause (connection refused, timed out), for the operator's log.
/// Without the URL: some providers (Mail.ru) take the access token in the query string.
fn describe(e: reqwest::Error) -> OutboundError {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    OutboundError::Request(text)
}

/// The `oauth2` crate calls providers through this (a boxed `Send` future: the handlers run on
/// a multi-threaded runtime).
impl<'c> oauth2::AsyncHttpClient<'c> for Outbound {
    type Error = OutboundError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, OutboundError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}
