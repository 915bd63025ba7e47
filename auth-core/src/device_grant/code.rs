//! The two codes of RFC 8628: the device code (a 256-bit secret only the TV holds, kept in
//! Redis as its SHA-256) and the user code (8 letters the viewer types, from the RFC's base-20
//! consonant alphabet: no vowels, so no words; 20^8 ≈ 2.6 × 10^10 codes).

use rand::Rng;

/// RFC 8628 §6.1: "BCDFGHJKLMNPQRSTVWXZ".
pub const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
pub const LEN: usize = 8;

/// A fresh user code, without the dash (stored and compared like this).
pub fn new_user_code() -> String {
    let mut rng = rand::rng();
    (0..LEN)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// As shown: `XXXX-XXXX`.
pub fn display(code: &str) -> String {
    match (code.get(..4), code.get(4..)) {
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => code.to_string(),
    }
}

/// What the viewer typed, made canonical: case and dashes or spaces do not matter; anything
/// else (another letter, a digit, the wrong length) is not a code: None, without a lookup.
pub fn normalize(input: &str) -> Option<String> {
    if input.len() > 32 {
        return None;
    }
    let code: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\u{2010}'..='\u{2015}'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_alphabet_and_read_back_however_typed() {
        for _ in 0..200 {
            let code = new_user_code();
            assert_eq!(code.len(), LEN);
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
            let shown = display(&code);
            assert_eq!(shown.len(), 9);
            assert_eq!(normalize(&shown).as_deref(), Some(code.as_str()));
            assert_eq!(
                normalize(&shown.to_lowercase()).as_deref(),
                Some(code.as_str())
            );
            assert_eq!(
                normalize(&format!(" {} ", shown.replace('-', " "))).as_deref(),
                Some(code.as_str())
            );
        }
        for bad in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-FGHJ",
            "BCDF-GHJ1",
            "BCDF_GHJK",
            "ВСDF-GHJK",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }
}
