//! Math questions a viewer answers with a remote control: digits only, harder after failures.
//! The random source is a parameter so tests fix it.

use rand::Rng;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Language-neutral: "7 + 5 = ?".
    pub text: String,
    pub answer: u32,
}

impl Question {
    /// Digits of the answer: the size of the input box on a TV.
    pub fn answer_digits(&self) -> u32 {
        self.answer.checked_ilog10().unwrap_or(0) + 1
    }
}

/// Level 0: a one-digit sum; 1: a two-digit sum; 2 and above: a product plus a number.
pub fn generate(level: u32, rng: &mut impl Rng) -> Question {
    let (text, answer) = match level {
        0 => {
            let (a, b) = (rng.random_range(2..=9), rng.random_range(2..=9));
            (format!("{a} + {b} = ?"), a + b)
        }
        1 => {
            let (a, b) = (rng.random_range(11..=49), rng.random_range(11..=49));
            (format!("{a} + {b} = ?"), a + b)
        }
        _ => {
            let (a, b, c) = (
                rng.random_range(3..=9),
                rng.random_range(3..=9),
                rng.random_range(2..=19),
            );
            (format!("{a} × {b} + {c} = ?"), a * b + c)
        }
    };
    Question { text, answer }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn questions_get_harder_and_their_answers_are_right() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for level in 0..4 {
            for _ in 0..200 {
                let q = generate(level, &mut rng);
                let expr = q.text.trim_end_matches(" = ?");
                let value: u32 =
                    if let Some((ab, c)) = expr.split_once(" + ").filter(|_| level >= 2) {
                        let (a, b) = ab.split_once(" × ").unwrap();
                        a.parse::<u32>().unwrap() * b.parse::<u32>().unwrap()
                            + c.parse::<u32>().unwrap()
                    } else {
                        let (a, b) = expr.split_once(" + ").unwrap();
                        a.parse::<u32>().unwrap() + b.parse::<u32>().unwrap()
                    };
                assert_eq!(value, q.answer, "{}", q.text);
                let range = match level {
                    0 => 4..=18,
                    1 => 22..=98,
                    _ => 11..=100,
                };
                assert!(range.contains(&q.answer), "{level}: {}", q.text);
            }
        }
        assert_eq!(
            Question {
                text: String::new(),
                answer: 7
            }
            .answer_digits(),
            1
        );
        assert_eq!(
            Question {
                text: String::new(),
                answer: 10
            }
            .answer_digits(),
            2
        );
        assert_eq!(
            Question {
                text: String::new(),
                answer: 100
            }
            .answer_digits(),
            3
        );
    }
}
