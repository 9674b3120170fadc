//! A line of the insurer's roster (SPEC LC-1, ID-1): the administrative data a space is
//! created with. Validation is pure; reading CSV or FHIR happens in the layers above.

use serde::{Deserialize, Serialize};
use time::Date;
use time::macros::format_description;

use crate::clock::Timestamp;
use crate::ins::Ins;
use crate::lifecycle::{is_minor, majority_at};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Female,
    Male,
    Unknown,
}

/// Administrative data of a holder, as sealed in their space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Administrative {
    pub ins: Ins,
    pub birth_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_name: Option<String>,
    pub given_names: Vec<String>,
    pub sex: Sex,
    #[serde(with = "iso_date")]
    pub birth_date: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_place: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// Dates as `YYYY-MM-DD` (FHIR `date`), not `time`'s default tuple.
mod iso_date {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;
    use time::macros::format_description;

    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        format_description!("[year]-[month]-[day]");

    pub fn serialize<S: Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
        let text = d.format(FORMAT).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let text = String::deserialize(d)?;
        Date::parse(&text, FORMAT).map_err(serde::de::Error::custom)
    }
}

/// A validated roster record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterRecord {
    pub admin: Administrative,
    /// INS of the legal representative who declared a minor (MI-1), if any.
    pub representative_ins: Option<Ins>,
    /// Serial number of the Carte Vitale (LC-4 identity proof); never stored in clear.
    pub card_serial: Option<String>,
    /// What the representative is: a parent of a minor (MI-1), the guardian of a protected
    /// adult, or a curator (MI-4).
    pub representative_kind: RepresentativeKind,
}

/// Who the roster names beside a person (MI-1, MI-4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepresentativeKind {
    /// A holder of parental authority (MI-1): acts for the minor until majority (MI-3).
    #[default]
    Parent,
    /// A guardian whose measure (tutelle) includes representing the person: acts for them.
    Guardian,
    /// A curator (curatelle): assists the person, who keeps deciding about their health and
    /// their space alone (French civil code, art. 459). Within the limits of that measure
    /// (MI-4) a curator is not a representative in the space: nothing is linked.
    Curator,
}

impl RepresentativeKind {
    pub const fn tag(self) -> &'static str {
        match self {
            RepresentativeKind::Parent => "parent",
            RepresentativeKind::Guardian => "guardian",
            RepresentativeKind::Curator => "curator",
        }
    }

    /// Whether the measure makes them act in the person's space (MI-1, MI-4).
    pub const fn represents(self) -> bool {
        match self {
            RepresentativeKind::Parent | RepresentativeKind::Guardian => true,
            RepresentativeKind::Curator => false,
        }
    }
}

/// The raw fields of a roster line, as read from CSV or FHIR.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct RawRosterLine {
    pub ins: String,
    pub birth_name: String,
    #[serde(default)]
    pub used_name: String,
    pub given_names: String,
    pub sex: String,
    pub birth_date: String,
    #[serde(default)]
    pub birth_place: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub representative_ins: String,
    #[serde(default)]
    pub card_serial: String,
    #[serde(default)]
    pub representative_kind: String,
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !s.contains(char::is_whitespace)
}

impl RawRosterLine {
    /// Validates the line; the error says which field is wrong and why.
    pub fn validate(&self, now: Timestamp) -> Result<RosterRecord, String> {
        let ins = Ins::parse(&self.ins).map_err(|e| format!("ins: {e}"))?;
        let birth_name = opt(&self.birth_name).ok_or("birth_name: missing")?;
        let given_names: Vec<String> = self
            .given_names
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if given_names.is_empty() {
            return Err("given_names: missing".into());
        }
        let sex = match self.sex.trim().to_ascii_lowercase().as_str() {
            "f" | "female" | "2" => Sex::Female,
            "m" | "male" | "1" => Sex::Male,
            "u" | "unknown" | "" => Sex::Unknown,
            other => return Err(format!("sex: '{other}' is not F, M or U")),
        };
        let birth_date = Date::parse(
            self.birth_date.trim(),
            format_description!("[year]-[month]-[day]"),
        )
        .map_err(|_| {
            format!(
                "birth_date: '{}' is not a date YYYY-MM-DD",
                self.birth_date.trim()
            )
        })?;
        let today = now.to_offset_date_time().map(|t| t.date());
        if today.is_some_and(|d| birth_date > d) {
            return Err("birth_date: in the future".into());
        }
        let email = opt(&self.email);
        if let Some(e) = &email
            && !plausible_email(e)
        {
            return Err(format!("email: '{e}' is not an e-mail address"));
        }
        let representative_ins = match opt(&self.representative_ins) {
            Some(r) => Some(Ins::parse(&r).map_err(|e| format!("representative_ins: {e}"))?),
            None => None,
        };
        let representative_kind = match self.representative_kind.trim().to_ascii_lowercase().as_str() {
            "" | "parent" => RepresentativeKind::Parent,
            "guardian" | "tuteur" | "tutelle" => RepresentativeKind::Guardian,
            "curator" | "curateur" | "curatelle" => RepresentativeKind::Curator,
            other => {
                return Err(format!(
                    "representative_kind: '{other}' is not parent, guardian or curator"
                ));
            }
        };
        if representative_ins.as_ref() == Some(&ins) {
            return Err("representative_ins: a person cannot represent themselves".into());
        }
        Ok(RosterRecord {
            admin: Administrative {
                ins,
                birth_name,
                used_name: opt(&self.used_name),
                given_names,
                sex,
                birth_date,
                birth_place: opt(&self.birth_place),
                address: opt(&self.address),
                email,
                phone: opt(&self.phone),
            },
            representative_ins,
            card_serial: opt(&self.card_serial),
            representative_kind,
        })
    }
}

impl RosterRecord {
    /// When a minor turns 18, or `None` for an adult at `now` (MI-3).
    pub fn majority_at(&self, now: Timestamp) -> Option<Timestamp> {
        is_minor(self.admin.birth_date, now).then(|| majority_at(self.admin.birth_date))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> RawRosterLine {
        let k = crate::ins::nir_key("2850275123456").unwrap();
        RawRosterLine {
            ins: format!("2850275123456{k:02}"),
            birth_name: "MARTIN".into(),
            given_names: "Camille Marie".into(),
            sex: "F".into(),
            birth_date: "1985-02-14".into(),
            email: "camille@example.org".into(),
            ..RawRosterLine::default()
        }
    }

    #[test]
    fn a_good_line_validates() {
        let now = Timestamp::from_unix_seconds(1_800_000_000);
        let r = line().validate(now).unwrap();
        assert_eq!(r.admin.given_names, vec!["Camille", "Marie"]);
        assert_eq!(r.admin.sex, Sex::Female);
        assert_eq!(r.majority_at(now), None);
        let json = serde_json::to_value(&r.admin).unwrap();
        assert_eq!(json["birth_date"], "1985-02-14");
        let back: Administrative = serde_json::from_value(json).unwrap();
        assert_eq!(back, r.admin);
    }

    /// MI-4: a guardian represents the person in their space; a curator assists and does not.
    #[test]
    fn a_measure_says_whether_its_holder_represents_mi4() {
        let now = Timestamp::from_unix_seconds(1_800_000_000);
        let rep = crate::ins::nir_key("1500175123456").unwrap();
        for (typed, kind, represents) in [
            ("", RepresentativeKind::Parent, true),
            ("Tuteur", RepresentativeKind::Guardian, true),
            ("tutelle", RepresentativeKind::Guardian, true),
            ("curateur", RepresentativeKind::Curator, false),
            ("Curatelle", RepresentativeKind::Curator, false),
        ] {
            let r = RawRosterLine {
                representative_ins: format!("1500175123456{rep:02}"),
                representative_kind: typed.into(),
                ..line()
            }
            .validate(now)
            .unwrap();
            assert_eq!(r.representative_kind, kind, "{typed}");
            assert_eq!(r.representative_kind.represents(), represents, "{typed}");
        }
        let bad = RawRosterLine {
            representative_kind: "voisin".into(),
            ..line()
        }
        .validate(now)
        .unwrap_err();
        assert!(bad.contains("not parent, guardian or curator"), "{bad}");
    }

    #[test]
    fn each_bad_field_is_named() {
        let now = Timestamp::from_unix_seconds(1_800_000_000);
        type Change = fn(&mut RawRosterLine);
        let cases: Vec<(Change, &str)> = vec![
            (|l| l.ins = "123".into(), "ins:"),
            (|l| l.birth_name = " ".into(), "birth_name: missing"),
            (|l| l.given_names = "".into(), "given_names: missing"),
            (|l| l.sex = "X".into(), "sex:"),
            (|l| l.birth_date = "14/02/1985".into(), "birth_date:"),
            (
                |l| l.birth_date = "2099-01-01".into(),
                "birth_date: in the future",
            ),
            (|l| l.email = "not an email".into(), "email:"),
            (|l| l.representative_ins = "999".into(), "representative_ins:"),
        ];
        for (change, expected) in cases {
            let mut l = line();
            change(&mut l);
            let err = l.validate(now).unwrap_err();
            assert!(err.starts_with(expected), "{err} should start with {expected}");
        }
    }

    #[test]
    fn minors_get_their_majority_date() {
        let mut l = line();
        l.birth_date = "2015-06-02".into();
        let now = Timestamp::from_unix_seconds(1_800_000_000); // 2027
        let r = l.validate(now).unwrap();
        assert_eq!(
            r.majority_at(now),
            Some(majority_at(time::macros::date!(2015 - 06 - 02)))
        );
    }
}
