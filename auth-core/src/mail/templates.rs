//! The mails, in English and Russian, as plain text and HTML. Rendered when queued, so the
//! outbox row is exactly what will be sent.

use crate::plumbing::html::escape;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Ru,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    /// A stored or requested language; anything unknown is English.
    pub fn parse(s: &str) -> Lang {
        if s == "ru" {
            Lang::Ru
        } else {
            Lang::En
        }
    }

    pub fn from_accept_language(v: Option<&str>) -> Lang {
        if crate::plumbing::html::prefers_russian(v) {
            Lang::Ru
        } else {
            Lang::En
        }
    }
}

/// What a mail says.
pub enum Mail<'a> {
    /// After sign-up or a resend: confirm this address.
    ConfirmEmail { link: &'a str, hours: u64 },
    /// Forgot password; `first` when the account has no password yet (social sign-up).
    ResetPassword {
        link: &'a str,
        minutes: u64,
        first: bool,
    },
    /// To the new address of an email change: confirm it.
    ConfirmNewEmail { link: &'a str, hours: u64 },
    /// To the old address of an email change: it was asked for, and where it goes.
    EmailChangeNotice { new_email: &'a str },
}

impl Mail<'_> {
    /// The template's name in the outbox and the logs.
    pub fn name(&self) -> &'static str {
        match self {
            Mail::ConfirmEmail { .. } => "confirm_email",
            Mail::ResetPassword { .. } => "reset_password",
            Mail::ConfirmNewEmail { .. } => "confirm_new_email",
            Mail::EmailChangeNotice { .. } => "email_change_notice",
        }
    }
}

pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Lines of a mail: a greeting, paragraphs, an optional button link, a closing line.
struct Parts {
    subject: String,
    paragraphs: Vec<String>,
    link: Option<(String, String)>,
    footer: String,
}

pub fn render(mail: &Mail<'_>, lang: Lang) -> Rendered {
    let p = parts(mail, lang);
    let mut text = String::new();
    let mut html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body style=\"font-family:sans-serif;max-width:36em\">",
        lang.as_str(),
        escape(&p.subject)
    );
    for para in &p.paragraphs {
        text.push_str(para);
        text.push_str("\n\n");
        html.push_str(&format!("<p>{}</p>", escape(para)));
    }
    if let Some((label, url)) = &p.link {
        text.push_str(&format!("{label}:\n{url}\n\n"));
        html.push_str(&format!(
            "<p><a href=\"{}\" style=\"display:inline-block;padding:.6em 1.2em;background:#1a73e8;\
             color:#fff;text-decoration:none;border-radius:4px\">{}</a></p>\
             <p style=\"font-size:small;color:#555\">{}</p>",
            escape(url),
            escape(label),
            escape(url)
        ));
    }
    text.push_str(&p.footer);
    text.push('\n');
    html.push_str(&format!(
        "<p style=\"font-size:small;color:#555\">{}</p></body></html>",
        escape(&p.footer)
    ));
    Rendered {
        subject: p.subject,
        text,
        html,
    }
}

fn parts(mail: &Mail<'_>, lang: Lang) -> Parts {
    let (footer_en, footer_ru) = (
        "If you did not ask for this, ignore this mail: nothing changes.",
        "Если вы этого не запрашивали, просто проигнорируйте письмо: ничего не изменится.",
    );
    let footer = match lang {
        Lang::En => footer_en.to_string(),
        Lang::Ru => footer_ru.to_string(),
    };
    match (mail, lang) {
        (Mail::ConfirmEmail { link, hours }, Lang::En) => Parts {
            subject: "Confirm your email for Cinema".into(),
            paragraphs: vec![
                "Welcome to Cinema!".into(),
                format!("Confirm that this address is yours. The link works once, for {hours} hours."),
            ],
            link: Some(("Confirm email".into(), link.to_string())),
            footer,
        },
        (Mail::ConfirmEmail { link, hours }, Lang::Ru) => Parts {
            subject: "Подтвердите почту в Кинотеатре".into(),
            paragraphs: vec![
                "Добро пожаловать в Кинотеатр!".into(),
                format!("Подтвердите, что это ваш адрес. Ссылка действует один раз, {hours} ч."),
            ],
            link: Some(("Подтвердить почту".into(), link.to_string())),
            footer,
        },
        (Mail::ResetPassword { link, minutes, first }, Lang::En) => Parts {
            subject: if *first { "Set a password for Cinema" } else { "Reset your Cinema password" }.into(),
            paragraphs: vec![
                if *first {
                    "You asked to set a password for your Cinema account.".into()
                } else {
                    "You asked to reset the password of your Cinema account.".to_string()
                },
                format!("The link works once, for {minutes} minutes. Every device signed in to the account will be signed out."),
            ],
            link: Some((if *first { "Set password" } else { "Reset password" }.into(), link.to_string())),
            footer,
        },
        (Mail::ResetPassword { link, minutes, first }, Lang::Ru) => Parts {
            subject: if *first { "Задайте пароль в Кинотеатре" } else { "Сброс пароля в Кинотеатре" }.into(),
            paragraphs: vec![
                if *first {
                    "Вы попросили задать пароль для аккаунта Кинотеатра.".into()
                } else {
                    "Вы попросили сбросить пароль аккаунта Кинотеатра.".to_string()
                },
                format!("Ссылка действует один раз, {minutes} мин. Все устройства, где выполнен вход, выйдут из аккаунта."),
            ],
            link: Some((if *first { "Задать пароль" } else { "Сбросить пароль" }.into(), link.to_string())),
            footer,
        },
        (Mail::ConfirmNewEmail { link, hours }, Lang::En) => Parts {
            subject: "Confirm your new email for Cinema".into(),
            paragraphs: vec![
                "You asked to move your Cinema account to this address.".into(),
                format!("The change takes effect when you confirm. The link works once, for {hours} hours."),
            ],
            link: Some(("Confirm new email".into(), link.to_string())),
            footer,
        },
        (Mail::ConfirmNewEmail { link, hours }, Lang::Ru) => Parts {
            subject: "Подтвердите новую почту в Кинотеатре".into(),
            paragraphs: vec![
                "Вы попросили перенести аккаунт Кинотеатра на этот адрес.".into(),
                format!("Изменение вступит в силу после подтверждения. Ссылка действует один раз, {hours} ч."),
            ],
            link: Some(("Подтвердить новую почту".into(), link.to_string())),
            footer,
        },
        (Mail::EmailChangeNotice { new_email }, Lang::En) => Parts {
            subject: "Your Cinema email is being changed".into(),
            paragraphs: vec![
                format!("Someone signed in to your account asked to move it to {new_email}. It moves only when that address confirms."),
                "If it was not you, change your password now: that signs out every device.".into(),
            ],
            link: None,
            footer: String::new(),
        },
        (Mail::EmailChangeNotice { new_email }, Lang::Ru) => Parts {
            subject: "Почта аккаунта Кинотеатра меняется".into(),
            paragraphs: vec![
                format!("Из вашего аккаунта попросили перенести его на адрес {new_email}. Перенос произойдёт только после подтверждения с того адреса."),
                "Если это были не вы, смените пароль: все устройства выйдут из аккаунта.".into(),
            ],
            link: None,
            footer: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_carry_the_link_in_text_and_html() {
        let link = "https://cinema.test/confirm?token=a&b";
        for lang in [Lang::En, Lang::Ru] {
            let r = render(&Mail::ConfirmEmail { link, hours: 24 }, lang);
            assert!(r.text.contains(link));
            assert!(r.html.contains("token=a&amp;b"), "{}", r.html);
            assert!(r.text.contains("24"));
        }
        assert!(render(&Mail::ConfirmEmail { link, hours: 24 }, Lang::Ru)
            .subject
            .contains("Подтвердите"));
        let notice = render(
            &Mail::EmailChangeNotice {
                new_email: "<x>@e.com",
            },
            Lang::En,
        );
        assert!(notice.html.contains("&lt;x&gt;@e.com"));
        assert!(!notice.html.contains("<x>"));
        assert_eq!(Lang::parse("de"), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("ru-RU,en")), Lang::Ru);
    }
}
