//! The national health identifier (INS, SPEC ID-1, IO-1): a NIR of 13 characters followed by a
//! 2-digit control key = 97 - (NIR mod 97), where the Corsican departments 2A and 2B are read
//! as 19 and 18 for the computation.

use std::fmt;

use serde::{Deserialize, Serialize};

/// OID of the NIR as an INS identifier system (IO-1).
pub const OID_NIR: &str = "urn:oid:1.2.250.1.213.1.4.8";
/// OID of the NIA (temporary number).
pub const OID_NIA: &str = "urn:oid:1.2.250.1.213.1.4.9";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsError {
    #[error("an INS has 15 characters (13 for the NIR, 2 for the key), found {0}")]
    Length(usize),
    #[error("character {position} ('{found}') is not allowed here")]
    Character { position: usize, found: char },
    #[error("the first digit (sex) must be 1, 2, 3, 4, 7 or 8, found {0}")]
    Sex(char),
    #[error("the key is {found} but the NIR gives {expected}")]
    Key { expected: u8, found: u8 },
}

/// A validated INS. Personal data: never log it, never put it in a URL.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ins(String);

impl fmt::Debug for Ins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ins(***)")
    }
}

impl Ins {
    /// Parses an INS, ignoring spaces (as printed on cards: `2 85 02 75 123 456 78`).
    pub fn parse(input: &str) -> Result<Ins, InsError> {
        let s: String = input
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let n = s.chars().count();
        if n != 15 {
            return Err(InsError::Length(n));
        }
        let chars: Vec<char> = s.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            let ok = c.is_ascii_digit() || (i == 6 && (*c == 'A' || *c == 'B') && chars[5] == '2');
            if !ok {
                return Err(InsError::Character {
                    position: i + 1,
                    found: *c,
                });
            }
        }
        if !matches!(chars[0], '1' | '2' | '3' | '4' | '7' | '8') {
            return Err(InsError::Sex(chars[0]));
        }
        let expected = nir_key(&s[..13]).ok_or(InsError::Character {
            position: 1,
            found: chars[0],
        })?;
        let found: u8 = s[13..].parse().map_err(|_| InsError::Character {
            position: 14,
            found: chars[13],
        })?;
        if expected != found {
            return Err(InsError::Key { expected, found });
        }
        Ok(Ins(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 13-character NIR without its key.
    pub fn nir(&self) -> &str {
        &self.0[..13]
    }
}

impl TryFrom<String> for Ins {
    type Error = InsError;
    fn try_from(s: String) -> Result<Self, InsError> {
        Ins::parse(&s)
    }
}

impl From<Ins> for String {
    fn from(i: Ins) -> String {
        i.0
    }
}

/// The control key of a 13-character NIR (2A/2B read as 19/18), or `None` if not a NIR.
pub fn nir_key(nir: &str) -> Option<u8> {
    if nir.len() != 13 {
        return None;
    }
    let digits = match &nir[5..7] {
        "2A" | "2a" => format!("{}19{}", &nir[..5], &nir[7..]),
        "2B" | "2b" => format!("{}18{}", &nir[..5], &nir[7..]),
        _ => nir.to_string(),
    };
    let n: u64 = digits.parse().ok()?;
    Some((97 - (n % 97)) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_keys() {
        // 2 85 02 75 123 456 -> 97 - (2850275123456 mod 97)
        let k = nir_key("2850275123456").unwrap();
        assert_eq!(u64::from(k), 97 - 2_850_275_123_456u64 % 97);
        assert!(Ins::parse(&format!("2850275123456{k:02}")).is_ok());
        assert!(
            Ins::parse(&format!("2 85 02 75 123 456 {k:02}")).is_ok(),
            "spaces allowed"
        );
    }

    #[test]
    fn corsica_reads_2a_as_19_and_2b_as_18() {
        let k2a = nir_key("185022A123456").unwrap();
        assert_eq!(u64::from(k2a), 97 - 1_850_219_123_456u64 % 97);
        let k2b = nir_key("185022B123456").unwrap();
        assert_eq!(u64::from(k2b), 97 - 1_850_218_123_456u64 % 97);
        assert!(Ins::parse(&format!("185022a123456{k2a:02}")).is_ok());
        assert!(matches!(
            Ins::parse(&format!("18502A3123456{k2a:02}")),
            Err(InsError::Character { .. })
        ));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(Ins::parse("123"), Err(InsError::Length(3)));
        assert!(matches!(
            Ins::parse("28502751234X678"),
            Err(InsError::Character {
                position: 12,
                found: 'X'
            })
        ));
        assert!(matches!(Ins::parse("585027512345678"), Err(InsError::Sex('5'))));
        let k = nir_key("2850275123456").unwrap();
        let wrong = (k % 97) + 1;
        assert_eq!(
            Ins::parse(&format!("2850275123456{wrong:02}")),
            Err(InsError::Key {
                expected: k,
                found: wrong
            })
        );
        assert_eq!(
            format!("{:?}", Ins::parse(&format!("2850275123456{k:02}")).unwrap()),
            "Ins(***)"
        );
    }

    proptest! {
        #[test]
        fn every_nir_with_its_key_is_valid_and_any_other_key_is_not(
            sex in prop::sample::select(vec!['1', '2', '7', '8']),
            rest in "[0-9]{12}",
            other in 0u8..100,
        ) {
            let nir = format!("{sex}{rest}");
            let k = nir_key(&nir).unwrap();
            prop_assert!((1..=97).contains(&k));
            let ins = Ins::parse(&format!("{nir}{k:02}")).unwrap();
            prop_assert_eq!(ins.nir(), nir.as_str());
            if other != k {
                let bad = Ins::parse(&format!("{nir}{other:02}"));
                prop_assert!(matches!(bad, Err(InsError::Key { .. })), "bad key accepted");
            }
        }

        #[test]
        fn one_changed_digit_is_always_caught(rest in "[0-9]{12}", pos in 1usize..13, delta in 1u8..10) {
            let nir = format!("1{rest}");
            let k = nir_key(&nir).unwrap();
            let mut b = nir.into_bytes();
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(b).unwrap();
            let candidate = format!("{changed}{k:02}");
            prop_assert!(Ins::parse(&candidate).is_err(), "changed digit accepted");
        }
    }
}
