//! What a challenged client sees: JSON for TV apps, and for browsers a page readable from a
//! sofa — large text, a digits-only input reachable with a D-pad, no JavaScript — in Russian
//! or English by `Accept-Language`.

use super::{Failure, Issued};
use serde_json::json;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ru,
    En,
}

impl Lang {
    /// The first language the client lists decides; anything but Russian gets English.
    pub fn from_accept_language(value: Option<&str>) -> Lang {
        if auth_core::plumbing::html::prefers_russian(value) {
            Lang::Ru
        } else {
            Lang::En
        }
    }
}

struct Text {
    title: &'static str,
    prompt: &'static str,
    button: &'static str,
    wrong: &'static str,
    too_fast: &'static str,
    expired: &'static str,
    locked: &'static str,
}

const RU: Text = Text {
    title: "Проверка",
    prompt: "Решите пример, чтобы продолжить просмотр",
    button: "Продолжить",
    wrong: "Неверно. Попробуйте ещё раз.",
    too_fast: "Слишком быстро. Попробуйте ещё раз.",
    expired: "Время вышло. Вот новый пример.",
    locked: "Слишком много неверных ответов. Попробуйте через",
};

const EN: Text = Text {
    title: "Check",
    prompt: "Solve this to keep watching",
    button: "Continue",
    wrong: "Not quite. Try again.",
    too_fast: "Too fast. Try again.",
    expired: "Time is up. Here is a new one.",
    locked: "Too many wrong answers. Try again in",
};

fn text(lang: Lang) -> &'static Text {
    match lang {
        Lang::Ru => &RU,
        Lang::En => &EN,
    }
}

pub fn reason_code(why: Failure) -> &'static str {
    match why {
        Failure::Wrong => "wrong_answer",
        Failure::TooFast => "too_fast",
        Failure::Expired => "expired",
        Failure::OtherClient => "other_client",
    }
}

fn reason_text(lang: Lang, why: Failure) -> &'static str {
    let t = text(lang);
    match why {
        Failure::Wrong | Failure::OtherClient => t.wrong,
        Failure::TooFast => t.too_fast,
        Failure::Expired => t.expired,
    }
}

/// Rounded up, at least 1: a client that waits this long finds the lockout over.
pub fn whole_seconds(d: Duration) -> u64 {
    (d.as_millis() as u64).div_ceil(1000).max(1)
}

fn minutes(d: Duration) -> u64 {
    d.as_secs().div_ceil(60).max(1)
}

/// The JSON body of a challenge, a lockout or a failed answer.
pub fn json_body(issued: &Issued, why: Option<Failure>, request_id: &str) -> String {
    let mut body = match issued {
        Issued::Question {
            id,
            question,
            expires_in,
        } => json!({
            "error": "answer the question to continue",
            "code": "challenge",
            "challenge_id": id,
            "question": question.text,
            "expires_in": expires_in.as_secs(),
            "answer_digits": question.answer_digits(),
            "answer_url": format!("{}{id}", super::http::ANSWER_PREFIX),
            "request_id": request_id,
        }),
        Issued::Locked { retry_after } => json!({
            "error": "too many wrong answers; try again later",
            "code": "locked_out",
            "retry_after": whole_seconds(*retry_after),
            "request_id": request_id,
        }),
    };
    if let Some(why) = why {
        body["reason"] = json!(reason_code(why));
    }
    body.to_string()
}

/// The HTML page of a challenge or a lockout. `return_to` was checked to be a local path.
pub fn html(issued: &Issued, why: Option<Failure>, lang: Lang, return_to: &str) -> String {
    let t = text(lang);
    let lang_attr = match lang {
        Lang::Ru => "ru",
        Lang::En => "en",
    };
    let notice = why.map(|w| reason_text(lang, w)).unwrap_or("");
    let main = match issued {
        Issued::Question { id, question, .. } => format!(
            r#"<p>{prompt}</p>
<p class="err" role="alert">{notice}</p>
<form method="post" action="{prefix}{id}">
<label for="answer" class="q">{q}</label>
<input id="answer" name="answer" type="text" inputmode="numeric" pattern="[0-9]*" maxlength="{digits}" autocomplete="off" autofocus required>
<input type="hidden" name="return_to" value="{ret}">
<button type="submit">{button}</button>
</form>"#,
            prompt = t.prompt,
            prefix = super::http::ANSWER_PREFIX,
            id = escape(id),
            q = escape(&question.text),
            digits = question.answer_digits() + 1,
            ret = escape(return_to),
            button = t.button,
        ),
        Issued::Locked { retry_after } => format!(
            r#"<p class="err" role="alert">{} {} min.</p>"#,
            t.locked,
            minutes(*retry_after)
        ),
    };
    format!(
        r#"<!doctype html>
<html lang="{lang_attr}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title>
<style>
body{{background:#111;color:#f5f5f5;font:36px/1.3 sans-serif;text-align:center;margin:3vh 4vw}}
p{{margin:.3em 0}}
.q{{display:block;font-size:88px;font-weight:bold;margin:.1em 0}}
input{{font-size:72px;width:4em;text-align:center;border:6px solid #fc0;border-radius:16px;background:#000;color:#fff}}
button{{display:block;margin:.5em auto 0;font-size:48px;padding:.2em 1.2em;border:0;border-radius:16px;background:#fc0;color:#000}}
input:focus,button:focus{{outline:8px solid #4cf;outline-offset:6px}}
.err{{color:#ff7b7b;min-height:1.3em}}
</style></head>
<body>
{main}
</body></html>
"#,
        title = t.title,
    )
}

use auth_core::plumbing::html::escape;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::botfilter::question::Question;

    #[test]
    fn language_follows_the_first_choice() {
        assert_eq!(
            Lang::from_accept_language(Some("ru-RU,ru;q=0.9,en;q=0.8")),
            Lang::Ru
        );
        assert_eq!(Lang::from_accept_language(Some("en-US,ru;q=0.9")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("RU")), Lang::Ru);
        assert_eq!(Lang::from_accept_language(Some("rue")), Lang::En);
        assert_eq!(Lang::from_accept_language(None), Lang::En);
    }

    #[test]
    fn the_page_escapes_what_it_echoes_and_needs_no_script() {
        let issued = Issued::Question {
            id: "abc".into(),
            question: Question {
                text: "2 + 3 = ?".into(),
                answer: 5,
            },
            expires_in: Duration::from_secs(120),
        };
        let page = html(&issued, Some(Failure::Wrong), Lang::Ru, "/x?a=\"><script>");
        assert!(page.contains("Решите пример"));
        assert!(page.contains("Неверно"));
        assert!(page.contains(r#"action="/_edge/challenge/abc""#));
        assert!(page.contains("&quot;&gt;&lt;script&gt;"));
        assert!(!page.contains("<script"));
        assert!(page.contains(r#"inputmode="numeric""#));
        let body: serde_json::Value =
            serde_json::from_str(&json_body(&issued, Some(Failure::TooFast), "rid")).unwrap();
        assert_eq!(body["answer_digits"], 1);
        assert_eq!(body["reason"], "too_fast");
        assert_eq!(body["answer_url"], "/_edge/challenge/abc");
        assert!(body.get("answer").is_none());
    }
}
