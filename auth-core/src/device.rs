//! Device type of a client, from its User-Agent, for login history.

/// `smart_tv`, `mobile` or `web`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Web,
    Mobile,
    SmartTv,
}

impl Device {
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Web => "web",
            Device::Mobile => "mobile",
            Device::SmartTv => "smart_tv",
        }
    }
}

/// Markers of TV platforms (case-insensitive). TVs are checked first: many TV browsers also
/// say "Android" or "Mobile".
const TV_MARKERS: &[&str] = &[
    "smart-tv",
    "smarttv",
    "tizen",
    "web0s",
    "webos",
    "netcast",
    "hbbtv",
    "android tv",
    "google tv",
    "bravia",
    "aftb",
    "aftm",
    "afts",
    "aftt",
    "aftk",
    "roku",
    "appletv",
    "apple tv",
    "tvos",
    "vidaa",
    "mitv",
    "mibox",
    "nettv",
    "philipstv",
    "yndx-",
    "sberbox",
    "crkey",
];

const MOBILE_MARKERS: &[&str] = &[
    "mobile",
    "iphone",
    "ipad",
    "ipod",
    "android",
    "windows phone",
];

pub fn classify(user_agent: &str) -> Device {
    let ua = user_agent.to_ascii_lowercase();
    if TV_MARKERS.iter().any(|m| ua.contains(m)) {
        Device::SmartTv
    } else if MOBILE_MARKERS.iter().any(|m| ua.contains(m)) {
        Device::Mobile
    } else {
        Device::Web
    }
}

/// The browser or app family, for the device-approval page ("Samsung Internet", "Chrome"…):
/// order matters, as most User-Agents name several engines.
pub fn browser_family(user_agent: &str) -> &'static str {
    const FAMILIES: &[(&str, &str)] = &[
        ("samsungbrowser", "Samsung Internet"),
        ("yabrowser", "Yandex Browser"),
        ("opr/", "Opera"),
        ("edg/", "Edge"),
        ("firefox/", "Firefox"),
        ("tizen", "Tizen browser"),
        ("web0s", "webOS browser"),
        ("webos", "webOS browser"),
        ("roku", "Roku"),
        ("chrome/", "Chrome"),
        ("crios/", "Chrome"),
        ("safari/", "Safari"),
        ("okhttp", "Android app"),
        ("cfnetwork", "Apple app"),
    ];
    let ua = user_agent.to_ascii_lowercase();
    FAMILIES
        .iter()
        .find(|(marker, _)| ua.contains(marker))
        .map_or("unknown", |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::{browser_family, classify, Device};

    #[test]
    fn browser_families() {
        assert_eq!(
            browser_family("Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0 TV Safari/537.36"),
            "Samsung Internet"
        );
        assert_eq!(
            browser_family(
                "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
            ),
            "Chrome"
        );
        assert_eq!(browser_family(""), "unknown");
    }

    #[test]
    fn tvs_phones_and_browsers() {
        let cases = [
            (
                "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36",
                Device::SmartTv,
            ),
            (
                "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36",
                Device::SmartTv,
            ),
            (
                "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7233) AppleWebKit",
                Device::SmartTv,
            ),
            ("Roku/DVP-9.10 (519.10E04111A)", Device::SmartTv),
            (
                "Mozilla/5.0 (Linux; Android 11; YNDX-000SB) Mobile",
                Device::SmartTv,
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148",
                Device::Mobile,
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/120 Mobile Safari",
                Device::Mobile,
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
                Device::Web,
            ),
            ("", Device::Web),
        ];
        for (ua, want) in cases {
            assert_eq!(classify(ua), want, "{ua}");
        }
    }
}
