//! The device flow's HTML: the TV page (large print, no JavaScript: it reloads itself) and the
//! phone's verification page (small forms). Russian or English by `Accept-Language`. Every
//! page forbids framing and scripts, and is never cached.

use crate::device_grant::settings::DeviceSettings;
use crate::device_grant::{Asking, Decision, Started};
use crate::error::{DeviceError, Error};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lang {
    Ru,
    En,
}

impl Lang {
    /// The first language the client lists decides; anything but Russian gets English.
    pub fn of(headers: &HeaderMap) -> Lang {
        let value = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        if crate::plumbing::html::prefers_russian(value) {
            Lang::Ru
        } else {
            Lang::En
        }
    }

    fn t(self, en: &'static str, ru: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::Ru => ru,
        }
    }

    fn code(self) -> &'static str {
        self.t("en", "ru")
    }
}

pub use crate::plumbing::html::escape as esc;

/// The QR code of `text` as an SVG element (the crate's XML declaration dropped, to inline it).
pub fn qr_svg(text: &str) -> Result<String, Error> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| Error::Internal(format!("qr code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .build();
    Ok(match svg.find("<svg") {
        Some(i) => svg[i..].to_string(),
        None => svg,
    })
}

fn page(
    lang: Lang,
    status: StatusCode,
    title: &str,
    body: &str,
    refresh: Option<String>,
) -> Response {
    let refresh = refresh
        .map(|r| format!("<meta http-equiv=\"refresh\" content=\"{}\">", esc(&r)))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{refresh}\
         <title>{title}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        lang = lang.code(),
        title = esc(title),
    );
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

const STYLE: &str = "body{font-family:sans-serif;margin:0;background:#111;color:#eee}\
main{max-width:40rem;margin:auto;padding:1.5rem}\
.tv{font-size:2.2rem;text-align:center}.tv .code{font-size:5rem;letter-spacing:.3rem;font-weight:bold}\
.tv svg{background:#fff;padding:12px;width:16rem;height:16rem}\
input,button{font-size:1.2rem;padding:.6rem;margin:.3rem 0;width:100%;box-sizing:border-box}\
button.deny{background:#444;color:#eee}.err{color:#f88}a{color:#9cf}";

// ---------------------------------------------------------------- the TV

/// The code, its QR and where to enter it; reloads every `interval` to poll.
pub fn tv_code(lang: Lang, s: &Started, client_id: &str) -> Response {
    let qr = qr_svg(&s.verification_uri_complete).unwrap_or_default();
    let next = format!(
        "{};url=/auth/device/wait?client_id={}&user_code={}",
        s.interval,
        urlencode(client_id),
        urlencode(&s.user_code)
    );
    let body = format!(
        "<div class=\"tv\"><p>{open}</p><p><b>{uri}</b></p><p>{enter}</p><p class=\"code\">{code}</p>\
         <p>{scan}</p>{qr}<p>{wait}</p></div>",
        open = lang.t("On your phone, open", "Откройте на телефоне"),
        uri = esc(&s.verification_uri),
        enter = lang.t("and enter the code", "и введите код"),
        code = esc(&s.user_code),
        scan = lang.t("or scan the QR code", "или отсканируйте QR-код"),
        wait = lang.t(
            "This page will sign you in once you approve.",
            "Эта страница войдёт в аккаунт, как только вы подтвердите вход."
        ),
    );
    page(
        lang,
        StatusCode::OK,
        lang.t("Sign in on your TV", "Вход на телевизоре"),
        &body,
        Some(next),
    )
}

/// The same page while waiting, from the reload (the code from the query, for display only).
pub fn tv_waiting(
    lang: Lang,
    d: &DeviceSettings,
    user_code: Option<&str>,
    client_id: &str,
    interval: u64,
) -> Response {
    let code = user_code.unwrap_or("");
    let s = Started {
        device_code: String::new(),
        user_code: code.to_string(),
        verification_uri: d.verification_uri.clone(),
        verification_uri_complete: format!("{}?user_code={code}", d.verification_uri),
        expires_in: d.user_code_ttl.as_secs(),
        interval,
    };
    tv_code(lang, &s, client_id)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msg {
    NoClient,
    Denied,
    Expired,
}

pub fn tv_message(lang: Lang, status: StatusCode, msg: Msg, again: Option<&str>) -> Response {
    let text = match msg {
        Msg::NoClient => lang.t(
            "This TV app is not registered.",
            "Это приложение не зарегистрировано.",
        ),
        Msg::Denied => lang.t(
            "Sign-in was denied on the phone.",
            "Вход отклонён на телефоне.",
        ),
        Msg::Expired => lang.t("The code expired.", "Срок действия кода истёк."),
    };
    let link = again_link(again, lang.t("Get a new code", "Получить новый код"));
    tv_notice(lang, status, &format!("<p>{text}</p>{link}"))
}

pub fn tv_error(lang: Lang, e: &Error, again: Option<&str>) -> Response {
    let text = problem_text(lang, e);
    let link = again_link(again, lang.t("Try again", "Попробовать снова"));
    let mut r = tv_notice(
        lang,
        e.status(),
        &format!("<p class=\"err\">{text}</p>{link}"),
    );
    if let Error::Throttled { retry_after } = e {
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after.as_secs().max(1)),
        );
    }
    r
}

/// A link that starts the TV page again for `client_id` (none without one).
fn again_link(client_id: Option<&str>, label: &str) -> String {
    client_id
        .filter(|c| !c.is_empty())
        .map(|c| {
            format!(
                "<p><a href=\"/auth/device?client_id={}\">{label}</a></p>",
                urlencode(c)
            )
        })
        .unwrap_or_default()
}

fn tv_notice(lang: Lang, status: StatusCode, inner: &str) -> Response {
    page(
        lang,
        status,
        lang.t("Sign in on your TV", "Вход на телевизоре"),
        &format!("<div class=\"tv\">{inner}</div>"),
        None,
    )
}

// ---------------------------------------------------------------- the phone

pub enum PhoneView {
    SignIn {
        user_code: String,
        /// (provider, start URL)
        providers: Vec<(String, String)>,
        error: Option<Error>,
    },
    EnterCode {
        error: Option<Error>,
    },
    Confirm(Box<Asking>),
    Done {
        decision: Decision,
        asking: Box<Asking>,
    },
    Problem(Error),
}

fn problem_text(lang: Lang, e: &Error) -> String {
    match e {
        Error::NotFound(_) => lang
            .t(
                "No such code, or it expired. Check the code on the TV.",
                "Код не найден или истёк. Проверьте код на телевизоре.",
            )
            .into(),
        Error::Conflict(_) => lang
            .t("This code was already used.", "Этот код уже использован.")
            .into(),
        Error::Invalid { .. } => lang
            .t(
                "A code looks like BCDF-GHJK.",
                "Код выглядит так: BCDF-GHJK.",
            )
            .into(),
        Error::Throttled { retry_after } => format!(
            "{} {} {}",
            lang.t(
                "Too many attempts. Try again in",
                "Слишком много попыток. Повторите через"
            ),
            retry_after.as_secs().div_ceil(60).max(1),
            lang.t("min.", "мин.")
        ),
        Error::InvalidCredentials => lang
            .t("Wrong email or password.", "Неверный email или пароль.")
            .into(),
        Error::Forbidden(_) => lang
            .t(
                "The form expired: open the page again.",
                "Форма устарела: откройте страницу заново.",
            )
            .into(),
        Error::DeviceGrant(DeviceError::InvalidClient) => lang
            .t(
                "This TV app is not registered.",
                "Это приложение не зарегистрировано.",
            )
            .into(),
        Error::Unavailable(_) => lang
            .t(
                "Sign-in is unavailable for a moment. Try again.",
                "Вход временно недоступен. Повторите попытку.",
            )
            .into(),
        _ => lang
            .t(
                "Something went wrong. Try again.",
                "Что-то пошло не так. Повторите попытку.",
            )
            .into(),
    }
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
        esc(value)
    )
}

pub fn phone(lang: Lang, d: &DeviceSettings, csrf: &str, view: PhoneView) -> Response {
    let action = esc(&d.activate_path);
    let title = lang.t("Sign in on a TV", "Вход на телевизоре");
    let mut retry_after = None;
    let (status, body) = match view {
        PhoneView::SignIn { user_code, providers, error } => {
            let err = error
                .as_ref()
                .map(|e| format!("<p class=\"err\">{}</p>", problem_text(lang, e)))
                .unwrap_or_default();
            let social: String = providers
                .iter()
                .map(|(name, url)| format!("<p><a href=\"{}\">{} {}</a></p>", esc(url), lang.t("Sign in with", "Войти через"), esc(name)))
                .collect();
            (
                error.as_ref().map_or(StatusCode::OK, Error::status),
                format!(
                    "<h1>{title}</h1><p>{why}</p>{err}<form method=\"post\" action=\"{action}\">{csrf}{code}{act}\
                     <input name=\"email\" type=\"email\" autocomplete=\"username\" placeholder=\"Email\" required>\
                     <input name=\"password\" type=\"password\" autocomplete=\"current-password\" placeholder=\"{pw}\" required>\
                     <button type=\"submit\">{signin}</button></form>{social}",
                    why = lang.t("Sign in to approve the TV.", "Войдите, чтобы подтвердить вход на телевизоре."),
                    csrf = hidden("csrf", csrf),
                    code = hidden("user_code", &user_code),
                    act = hidden("action", "login"),
                    pw = lang.t("Password", "Пароль"),
                    signin = lang.t("Sign in", "Войти"),
                ),
            )
        }
        PhoneView::EnterCode { error } => {
            let err = error
                .as_ref()
                .map(|e| format!("<p class=\"err\">{}</p>", problem_text(lang, e)))
                .unwrap_or_default();
            (
                StatusCode::OK,
                format!(
                    "<h1>{title}</h1>{err}<form method=\"get\" action=\"{action}\">\
                     <input name=\"user_code\" placeholder=\"BCDF-GHJK\" autocomplete=\"off\" autocapitalize=\"characters\" required>\
                     <button type=\"submit\">{next}</button></form>",
                    next = lang.t("Continue", "Продолжить"),
                ),
            )
        }
        PhoneView::Confirm(a) => (
            StatusCode::OK,
            format!(
                "<h1>{title}</h1><p>{asks}</p><ul><li><b>{app}</b></li><li>{dev}: {kind}, {browser}</li>\
                 <li>{net}: {network}</li><li>{when}: {created} UTC</li><li>{code_l}: <b>{code}</b></li></ul>\
                 {warn}<p>{check}</p>\
                 <form method=\"post\" action=\"{action}\">{csrf}{code_h}{approve_h}<button type=\"submit\">{approve}</button></form>\
                 <form method=\"post\" action=\"{action}\">{csrf}{code_h}{deny_h}<button class=\"deny\" type=\"submit\">{deny}</button></form>",
                asks = lang.t("A device asks to sign in to your account:", "Устройство просит войти в ваш аккаунт:"),
                app = esc(&a.client_name),
                dev = lang.t("Device", "Устройство"),
                kind = match a.device_type {
                    "smart_tv" => lang.t("Smart TV", "Смарт-ТВ"),
                    "mobile" => lang.t("phone or tablet", "телефон или планшет"),
                    _ => lang.t("computer", "компьютер"),
                },
                browser = esc(a.browser),
                net = lang.t("Network", "Сеть"),
                network = esc(&a.network),
                when = lang.t("Asked at", "Запрошено"),
                created = a.created.format("%Y-%m-%d %H:%M"),
                code_l = lang.t("Code", "Код"),
                code = esc(&a.user_code),
                check = lang.t("Approve only if this code is on your TV screen now.", "Подтверждайте, только если этот код сейчас на экране вашего телевизора."),
                warn = if a.same_network {
                    String::new()
                } else {
                    format!(
                        "<p class=\"err\"><b>{}</b></p>",
                        lang.t(
                            "This device is on a different network than your phone. If you did not start this on your own TV just now, deny: someone may be trying to get into your account.",
                            "Это устройство в другой сети, чем ваш телефон. Если вы не начинали вход на своём телевизоре только что, отклоните: возможно, кто-то пытается войти в ваш аккаунт."
                        )
                    )
                },
                csrf = hidden("csrf", csrf),
                code_h = hidden("user_code", &a.user_code),
                approve_h = hidden("action", "approve"),
                deny_h = hidden("action", "deny"),
                approve = lang.t("Approve", "Подтвердить"),
                deny = lang.t("Deny", "Отклонить"),
            ),
        ),
        PhoneView::Done { decision, asking } => (
            StatusCode::OK,
            format!(
                "<h1>{title}</h1><p>{text}</p><p>{code_l}: <b>{code}</b></p>",
                text = match decision {
                    Decision::Approve => lang.t("Approved. Your TV signs in within a few seconds.", "Подтверждено. Телевизор войдёт в аккаунт через несколько секунд."),
                    Decision::Deny => lang.t("Denied. The TV will not be signed in.", "Отклонено. Телевизор не получит доступ."),
                },
                code_l = lang.t("Code", "Код"),
                code = esc(&asking.user_code),
            ),
        ),
        PhoneView::Problem(e) => {
            let status = e.status();
            retry_after = match &e {
                Error::Throttled { retry_after } => Some(retry_after.as_secs().max(1)),
                _ => None,
            };
            (
                status,
                format!(
                    "<h1>{title}</h1><p class=\"err\">{}</p><p><a href=\"{action}\">{}</a></p>",
                    problem_text(lang, &e),
                    lang.t("Enter a code", "Ввести код")
                ),
            )
        }
    };
    let mut r = page(lang, status, title, &body, None);
    if let Some(secs) = retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

/// Percent-encodes one query value.
pub fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|v| v.trim_start_matches('=').to_string())
        .unwrap_or_default()
}
